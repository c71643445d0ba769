"""Every runtime module imports on its own, first, on a device without torch.

A circular import only shows when a module is the FIRST one imported (``import fer_edge.runtime.model``
failed that way); the rest of the suite always imports something else first, so it never saw it.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHECK = r"""
import importlib, pkgutil, sys
import fer_edge.runtime as rt
names = sorted(m.name for m in pkgutil.walk_packages(rt.__path__, "fer_edge.runtime."))
failed = []
for name in names:
    for k in [k for k in sys.modules if k == "fer_edge" or k.startswith("fer_edge.")]:
        del sys.modules[k]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
torch = [k for k in sys.modules if k == "torch" or k.startswith("torch.")]
print(len(names), "modules")
print("\n".join(failed))
sys.exit(1 if failed or torch else 0)
"""


def test_each_runtime_module_imports_first_and_without_torch():
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert int(proc.stdout.split()[0]) >= 10
