"""fer_edge.export — PyTorch checkpoint → ONNX with the contract inside, checked and parity-gated.

Entry point: :func:`fer_edge.export.onnx.export_onnx` (imports torch lazily; this package itself does
not, so calibration can reuse :mod:`~fer_edge.export.metadata` and :mod:`~fer_edge.export.trt_ops`).
"""
