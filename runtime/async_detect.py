"""Face detection in a background thread, so a slow detector does not stall every Nth frame.

On a CPU the Haar cascade takes 10–25 ms on a 640×480 frame while classifying a tracked face takes
about 1 ms. Run in line, every detection frame is a latency spike; run here, the main loop keeps
classifying the tracked boxes and folds the detections in when they arrive (a frame or two later).
OpenCV releases the GIL while detecting, so the two really run in parallel on two cores.
"""
from __future__ import annotations

import threading
from typing import Any, Callable, List, Optional, Tuple


class AsyncDetector:
    """One-slot worker: ``submit`` a frame when idle, ``poll`` for ``(tag, detections | exception)``."""

    def __init__(self, detect: Callable[[Any], List[Any]]):
        self._detect = detect
        self._cond = threading.Condition()
        self._job: Optional[Tuple[Any, Any]] = None
        self._result: Optional[Tuple[Any, Any]] = None
        self._busy = False
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="fer-edge-detect", daemon=True)
        self._thread.start()

    @property
    def busy(self) -> bool:
        return self._busy

    def submit(self, image: Any, tag: Any) -> bool:
        """Start detecting ``image`` unless a detection is still running; ``True`` if started."""
        with self._cond:
            if self._busy or self._closed:
                return False
            self._busy = True
            self._job = (image, tag)
            self._cond.notify_all()
            return True

    def poll(self) -> Optional[Tuple[Any, Any]]:
        """The finished ``(tag, detections or exception)``, once; ``None`` while running or idle."""
        with self._cond:
            result, self._result = self._result, None
            return result

    def wait(self, timeout: float = 5.0) -> bool:
        """Block until the running detection finishes (tests, benchmarks); ``poll`` then returns it."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy or self._closed, timeout)

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._job is not None or self._closed)
                if self._closed:
                    return
                image, tag = self._job
                self._job = None
            try:
                out: Any = self._detect(image)
            except Exception as exc:  # noqa: BLE001 - handed to the pipeline, which counts it
                out = exc
            with self._cond:
                self._result = (tag, out)
                self._busy = False
                self._cond.notify_all()

    def close(self, timeout: float = 2.0) -> None:
        """Stop the worker; waits for a running detection so no thread is inside OpenCV at exit."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
