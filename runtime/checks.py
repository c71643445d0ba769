"""Range checks for config fields: every stage's section validates its numbers with :func:`at_least`.

Standard library only (the runtime's own config, the data room's and the trainer's all use it), so loading
a config never imports a stage.
"""
from __future__ import annotations

import math
from typing import Optional

from .errors import ConfigError


def at_least(obj: object, name: str, low: float, high: Optional[float] = None, strict: bool = False) -> None:
    """Range check for a numeric field; the error names the key (the loader prefixes the section)."""
    v = getattr(obj, name)
    if v is None:
        return
    if not math.isfinite(v):  # NaN compares False with everything and would pass any range test
        raise ConfigError(f"{name}: {v!r} is not a finite number")
    bad = (v <= low if strict else v < low) or (high is not None and v > high)
    if bad:
        rng = f"{'>' if strict else '≥'} {low:g}" + (f" and ≤ {high:g}" if high is not None else "")
        raise ConfigError(f"{name}: {v!r} is out of range (must be {rng})")
