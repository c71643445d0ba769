"""Build progress from TensorRT's ``IProgressMonitor`` (10.x+): one bar per top-level build phase.

An engine build on a Jetson takes minutes with no output; TensorRT 10 reports its phases through
``config.progress_monitor``. Bars come from tqdm when installed (it is not in the runtime extra),
else each top-level phase is logged. Ctrl-C inside a callback cannot propagate through TensorRT,
so it is turned into "cancel the build" (``step_complete`` returns False) and re-raised afterwards.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional

log = logging.getLogger("fer_edge.build")


def make_progress_monitor(trt: Any) -> Optional[Any]:
    """An ``IProgressMonitor`` for ``trt``, or None where the API does not exist (8.x)."""
    base = getattr(trt, "IProgressMonitor", None)
    if base is None:
        return None
    try:
        from tqdm import tqdm
    except ImportError:  # the device may have only the runtime extra
        tqdm = None

    class BuildProgress(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            base.__init__(self)
            self.bars: Dict[str, Any] = {}
            self.cancelled = False

        def phase_start(self, phase_name: str, parent_phase: Optional[str], num_steps: int) -> None:
            try:
                if parent_phase is not None:
                    return
                if tqdm is not None:
                    self.bars[phase_name] = tqdm(total=num_steps, desc=phase_name, leave=False)
                else:
                    log.info("TensorRT: %s (%d steps)", phase_name, num_steps)
            except KeyboardInterrupt:
                self.cancelled = True

        def step_complete(self, phase_name: str, step: int) -> bool:
            try:
                bar = self.bars.get(phase_name)
                if bar is not None:
                    bar.update(step - bar.n)
                return not self.cancelled
            except KeyboardInterrupt:
                self.cancelled = True
                return False

        def phase_finish(self, phase_name: str) -> None:
            try:
                bar = self.bars.pop(phase_name, None)
                if bar is not None:
                    bar.close()
            except KeyboardInterrupt:
                self.cancelled = True

    return BuildProgress()
