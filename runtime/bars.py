"""One switch for every progress bar: ``--no-progress`` (or ``TQDM_DISABLE=1``) silences all of them.

Why an environment variable: a pipeline run draws bars in many places — synthesis workers (other
processes), dataset decoding, each training epoch, calibration's sensitivity sweep — and a log file
fed by a CI job or ``nohup`` should get none of them. tqdm itself honours ``TQDM_DISABLE`` for bars
created without an explicit ``disable=``; the places that compute their own ``disable`` ask
:func:`bars_off` too. The variable is inherited by worker processes, so one flag reaches them all.
"""
from __future__ import annotations

import os

ENV = "TQDM_DISABLE"


def bars_off() -> bool:
    """True when progress bars are switched off for this process (and the processes it starts)."""
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no")


def switch_bars_off() -> None:
    """Silence every progress bar from now on, in this process and its children."""
    os.environ[ENV] = "1"
