"""fer_edge.calibration — INT8 Q/DQ quantization on target images, TensorRT calibration cache, accuracy gate.

``calibrate`` lives in :mod:`fer_edge.calibration.quantize` (imports onnxruntime.quantization lazily
through it); ``verify_int8`` is light enough for the runtime to import.
"""
from .verify import verify_int8

__all__ = ["verify_int8", "calibrate"]


def calibrate(*args, **kwargs):
    """See :func:`fer_edge.calibration.quantize.calibrate`."""
    from .quantize import calibrate as _calibrate

    return _calibrate(*args, **kwargs)
