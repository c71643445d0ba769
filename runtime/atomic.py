"""Atomic file writes: temp file in the same folder, fsync, rename.

A killed process (Ctrl-C, OOM, ``kill -9``) must never leave a half-written checkpoint, ONNX model
or report that a later stage trusts. ``os.replace`` is atomic on POSIX and Windows when source and
destination are on the same filesystem, which is why the temp file sits next to the target.
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Iterator, Union

PathLike = Union[str, "os.PathLike[str]"]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


#: A temp file older than this is an orphan of a killed writer (writes here take seconds).
STALE_TEMP_SECONDS = 3600.0


def sweep_stale_temps(path: PathLike, max_age: float = STALE_TEMP_SECONDS) -> int:
    """Remove the hidden temp files a killed writer (``kill -9``, OOM, power loss) left beside ``path``.

    Only this module's own pattern (``.<name>.*.tmp<suffix>``) older than ``max_age`` seconds is
    touched, so a concurrent writer's fresh temp file survives. Returns how many were removed.
    """
    target = Path(path)
    if not target.parent.is_dir():
        return 0
    removed, now = 0, time.time()
    for tmp in target.parent.glob(f".{glob.escape(target.name)}.*.tmp{glob.escape(target.suffix)}"):
        with contextlib.suppress(OSError):
            if now - tmp.stat().st_mtime > max_age:
                tmp.unlink()
                removed += 1
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # POSIX only: signal 0 tests for existence (on Windows it would terminate)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):  # exists but not ours, or cannot tell: leave it alone
        return True
    return True


def _host() -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in socket.gethostname()) or "host"


def partial_dir(out_dir: PathLike) -> Path:
    """A fresh hidden ``.<name>.partial-<host>-<pid>`` sibling of ``out_dir`` for a folder written then renamed.

    Earlier ``partial`` folders that this host's dead processes left (killed mid-write) are removed
    first. A live process's folder (another rank writing the same cache) is left alone, and so is any
    folder of another host (a shared filesystem: its pids mean nothing here) or, on Windows, any other
    folder at all (no safe liveness test there).
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    mine = f".{out_dir.name}.partial-{_host()}-"
    if os.name == "posix":
        for old in out_dir.parent.glob(glob.escape(mine) + "*"):
            pid = old.name[len(mine):]
            if pid.isdigit() and (int(pid) == os.getpid() or not _pid_alive(int(pid))):
                shutil.rmtree(old, ignore_errors=True)
    return out_dir.parent / f"{mine}{os.getpid()}"


@contextlib.contextmanager
def atomic_path(path: PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it into place.

    For writers that want a path rather than bytes (``torch.save``, ``onnx.save``, ``cv2.imwrite``).
    On an exception the temp file is removed and ``path`` is left untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_temps(target)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix,
                                    dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write(path: PathLike, data: Union[bytes, str], encoding: str = "utf-8") -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    payload = data.encode(encoding) if isinstance(data, str) else data
    with atomic_path(path) as tmp:
        tmp.write_bytes(payload)
    return Path(path)
