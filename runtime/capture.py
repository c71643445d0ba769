"""A capture thread and the bounded queue between it and inference.

Capture and inference run at different speeds. On a live camera the right thing is to drop the
OLDEST waiting frame (results stay current, memory stays flat); on a file every frame matters, so
the reader blocks until inference catches up. ``drop_policy`` = ``auto`` picks by the source.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any, Deque, Optional

from .errors import ConfigError

log = logging.getLogger(__name__)

POLICIES = ("auto", "drop_oldest", "block")


class _End:
    """Sentinel put on the queue when the source is exhausted (``error`` set if it failed)."""

    def __init__(self, error: Optional[BaseException] = None):
        self.error = error


class FrameQueue:
    """Bounded FIFO; ``put`` drops the oldest item (``drop_oldest``) or waits (``block``) when full."""

    def __init__(self, maxsize: int = 4, drop_oldest: bool = False):
        if maxsize < 1:
            raise ConfigError(f"runtime.queue_size: {maxsize} must be >= 1")
        self.maxsize, self.drop_oldest = int(maxsize), bool(drop_oldest)
        self._items: Deque[Any] = collections.deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item: Any, force: bool = False) -> bool:
        """Enqueue ``item``; ``False`` if the queue was closed. ``force`` ignores the bound (sentinels)."""
        with self._cond:
            while not force and len(self._items) >= self.maxsize and not self._closed:
                if self.drop_oldest:
                    self._items.popleft()
                    self.dropped += 1
                    break
                self._cond.wait(0.1)
            if self._closed:
                return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self, timeout: Optional[float] = None) -> Any:
        """Dequeue the oldest item; raises ``TimeoutError`` when nothing came within ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._items:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError
                self._cond.wait(remaining if remaining is not None else 0.5)
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._items.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        return len(self._items)


class CaptureThread(threading.Thread):
    """Reads ``source.frames()`` into a :class:`FrameQueue`; ends with an ``_End`` sentinel.

    A daemon thread: a camera blocked inside its driver cannot keep the process alive at exit.
    """

    def __init__(self, source: Any, queue: FrameQueue, max_frames: Optional[int] = None):
        super().__init__(name="fer-edge-capture", daemon=True)
        self.source, self.queue, self.max_frames = source, queue, max_frames
        self._stop = threading.Event()

    def run(self) -> None:
        error: Optional[BaseException] = None
        try:
            for n, frame in enumerate(self.source.frames()):
                if self._stop.is_set() or (self.max_frames is not None and n >= self.max_frames):
                    break
                if not self.queue.put(frame):
                    break
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which decides
            error = exc
        finally:
            self.queue.put(_End(error), force=True)

    def stop(self) -> None:
        self._stop.set()
        try:
            self.source.close()
        except Exception:  # noqa: BLE001 - closing must never raise
            log.debug("closing source failed", exc_info=True)
        self.queue.close()


def resolve_drop_policy(policy: str, live: bool) -> bool:
    """``True`` when the queue should drop the oldest frame."""
    if policy not in POLICIES:
        raise ConfigError(f"runtime.drop_policy: {policy!r} is not one of {list(POLICIES)}")
    return live if policy == "auto" else policy == "drop_oldest"
