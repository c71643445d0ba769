"""fer-edge: one import namespace for the four stages (train, export, calibration, runtime).

Kept import-light on purpose: ``import fer_edge`` must never pull torch, because the runtime and the
CLI's ``run``/``info``/``build`` verbs execute on devices that only have the runtime extra. The
runtime's entry point is re-exported lazily, so the README's one-liner works::

    from fer_edge import Pipeline
    pipe = Pipeline.from_model("runs/default/calibrate/model.int8.onnx")
"""
from typing import Any

__version__ = "0.1.0"
__all__ = ["Pipeline", "__version__"]


def __getattr__(name: str) -> Any:
    # PEP 562: ``fer_edge.Pipeline`` imports the runtime (numpy + OpenCV) only when asked for.
    if name == "Pipeline":
        from fer_edge.runtime.pipeline import Pipeline

        return Pipeline
    raise AttributeError(f"module 'fer_edge' has no attribute {name!r}")
