"""Measure several inference paths *interleaved*: every path gets a slice of each round.

On a shared or thermally throttling machine the available CPU drifts over minutes. Measuring path A
for a minute and then path B compares two different machines; asking each path for a slice of its
calls in turn, round after round (starting with a different path each round), gives every path the
same mix of good and bad moments, so the ratios between them — the benchmark's headline — hold.
"""
from __future__ import annotations

import logging
import math
from typing import Dict, List, Union

import numpy as np

from .timing import LatencyStats
from .worker import RSS_IN_PROCESS, RSS_ISOLATED, PathJob, PathResult, PathSession, RemoteSession

log = logging.getLogger(__name__)


def _open(job: PathJob, isolate: bool) -> Union[PathSession, RemoteSession]:
    return RemoteSession(job) if isolate else PathSession(job)


def run_interleaved(jobs: Dict[str, PathJob], isolate: bool = True, rounds: int = 5) -> Dict[str, PathResult]:
    """Open every job, warm each up, then ``rounds`` rounds of latency and per-batch throughput slices.

    Batch-1 latency gets ``iters`` calls in all; batch ``b`` throughput ``max(3, iters // b)`` calls.
    A path that fails to open or dies is a ``failed`` result; a batch size a path cannot run is
    recorded in ``batch_errors`` and left out of the later rounds.
    """
    from fer_edge.runtime.errors import FerEdgeError

    rounds = max(1, int(rounds))
    results: Dict[str, PathResult] = {}
    sessions: Dict[str, Union[PathSession, RemoteSession]] = {}
    for name, job in jobs.items():
        log.info("bench: opening %s (%s)%s", name, job.model, " in its own process" if isolate else "")
        try:
            sessions[name] = _open(job, isolate)
        except (FerEdgeError, RuntimeError, OSError, ValueError) as exc:
            results[name] = PathResult.failed(job, str(exc))
            continue
        h = sessions[name].header
        results[name] = PathResult(name=name, model=job.model, backend=job.backend, precision=job.precision,
                                   size_mb=h["size_mb"], load_s=h["load_s"], rss_before_load_mb=h["rss_before_load_mb"],
                                   rss_method=RSS_ISOLATED if isolate else RSS_IN_PROCESS)
    lat: Dict[str, List[float]] = {n: [] for n in sessions}
    thr: Dict[str, Dict[int, List[float]]] = {n: {} for n in sessions}

    names = list(sessions)
    for name in names:                    # warm-up: first calls pay for allocation and kernel selection
        job = jobs[name]
        try:
            sessions[name].time(1, 0, job.warmup)
        except Exception as exc:  # noqa: BLE001 - a path failing must not stop the others
            results[name] = PathResult.failed(job, f"batch 1 failed: {exc}")
            _drop(sessions, name)
            continue
        for b in job.batches:
            try:
                sessions[name].time(b, 0, max(1, job.warmup // b))
                thr[name][b] = []
            except Exception as exc:  # noqa: BLE001 - a path failing must not stop the others
                results[name].batch_errors[str(b)] = str(exc)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)] if names else []
        for name in order:
            if name not in sessions:
                continue
            job = jobs[name]
            try:
                lat[name] += sessions[name].time(1, math.ceil(job.iters / rounds))
            except Exception as exc:  # noqa: BLE001 - a path failing must not stop the others
                results[name] = PathResult.failed(job, f"died while measuring: {exc}")
                _drop(sessions, name)
                continue
            for b in list(thr[name]):
                try:
                    thr[name][b] += sessions[name].time(b, math.ceil(max(3, job.iters // b) / rounds))
                except Exception as exc:  # noqa: BLE001 - a path failing must not stop the others
                    results[name].batch_errors[str(b)] = str(exc)
                    del thr[name][b]
    for name, session in list(sessions.items()):
        res = results[name]
        try:
            end = session.finish()
            res.backend_info, res.peak_rss_mb = end["backend_info"], float(end["peak_rss_mb"])
        except Exception as exc:  # noqa: BLE001 - figures so far are still valid
            log.warning("bench: %s did not finish cleanly: %s", name, exc)
        res.latency = LatencyStats.from_samples(lat[name]).to_dict()
        res.latency_samples_ms = [round(s * 1e3, 5) for s in lat[name]]
        for b, samples in sorted(thr[name].items()):
            res.throughput[str(b)] = b / float(np.median(samples))
    return results


def _drop(sessions: Dict[str, Union[PathSession, RemoteSession]], name: str) -> None:
    session = sessions.pop(name)
    close = getattr(session, "close", None)
    if callable(close):
        close()
