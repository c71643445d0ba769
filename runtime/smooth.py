"""Per-track temporal smoothing: an EMA of probabilities plus label hysteresis.

Single-frame expression predictions flicker (blinks, motion blur, a detector box that jitters). The
EMA steadies the probabilities; hysteresis keeps the reported label until a new one leads the
current one by ``margin`` for ``frames`` consecutive frames, so a one-frame spike never changes
it. The raw per-frame result is always reported next to the smoothed one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Iterable, Optional, Tuple

import numpy as np


@dataclass
class _State:
    probs: np.ndarray
    label: int
    candidate: Optional[int] = None
    streak: int = 0


class Smoother:
    """``update(track_id, probs) -> (smoothed probs, smoothed label index)``.

    ``alpha`` is the weight of the newest frame (1.0 = no smoothing). A track's first frame starts the
    EMA at its probabilities and its label at their argmax.
    """

    def __init__(self, alpha: float = 0.3, margin: float = 0.1, frames: int = 3):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha {alpha} must be in (0, 1]")
        self.alpha, self.margin, self.frames = float(alpha), float(margin), max(1, int(frames))
        self._state: Dict[int, _State] = {}

    def update(self, track_id: int, probs: np.ndarray) -> Tuple[np.ndarray, int]:
        p = np.asarray(probs, dtype=np.float32)
        st = self._state.get(track_id)
        if st is None:
            st = _State(probs=p.copy(), label=int(np.argmax(p)))
            self._state[track_id] = st
            return st.probs.copy(), st.label
        st.probs = (self.alpha * p + (1.0 - self.alpha) * st.probs).astype(np.float32)
        best = int(np.argmax(st.probs))
        if best != st.label and float(st.probs[best] - st.probs[st.label]) >= self.margin:
            st.streak = st.streak + 1 if st.candidate == best else 1
            st.candidate = best
            if st.streak >= self.frames:
                st.label, st.candidate, st.streak = best, None, 0
        else:
            st.candidate, st.streak = None, 0
        return st.probs.copy(), st.label

    def prune(self, live_ids: Iterable[int]) -> None:
        """Forget tracks that ended, so a long run's memory stays flat."""
        live = set(live_ids)
        for tid in [t for t in self._state if t not in live]:
            del self._state[tid]

    def __len__(self) -> int:
        return len(self._state)
