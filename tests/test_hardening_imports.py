"""Every runtime and data module imports on its own, first, on a device without torch.

The runtime is the deployment contract and the data room (loaders, the synthetic world, footage → faces)
stands on it alone: neither may pull torch, train, export or calibration in, whatever is imported first.

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
import fer_edge.data as data
import fer_edge.runtime as rt
names = sorted(m.name for pkg, prefix in ((rt, "fer_edge.runtime."), (data, "fer_edge.data."))
               for m in pkgutil.walk_packages(pkg.__path__, prefix))
names += ["fer_edge.data", "fer_edge.runtime"]
stages = ("fer_edge.train", "fer_edge.export", "fer_edge.calibration", "fer_edge.evaluation", "fer_edge.pipeline")
failed = []
for name in names:
    for k in [k for k in sys.modules if k == "fer_edge" or k.startswith("fer_edge.")]:
        del sys.modules[k]
    try:
        importlib.import_module(name)
    except Exception as exc:
        failed.append(f"{name}: {type(exc).__name__}: {exc}")
    failed += [f"{name} imported {k}" for k in sys.modules if k.startswith(stages)]
torch = [k for k in sys.modules if k == "torch" or k.startswith("torch.")]
print(len(names), "modules")
print("\n".join(failed))
sys.exit(1 if failed or torch else 0)
"""


def test_each_runtime_and_data_module_imports_first_and_without_torch():
    proc = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert int(proc.stdout.split()[0]) >= 60  # both packages were walked (runtime ~36, data ~29 modules)
