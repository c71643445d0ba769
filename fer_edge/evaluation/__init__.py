"""Evaluation and benchmarking of every artefact (checkpoint, ONNX, INT8 ONNX, TensorRT engine).

Accuracy and macro-F1 come from the one metrics module, ``fer_edge.runtime.metrics``. ``evaluate`` runs
one artefact on a dataset and writes ``metrics.json`` + confusion matrix; ``bench`` measures every
inference path side by side (latency, throughput, RSS, MACs, fraction of the machine's GEMM peak).
Heavy modules (torch, matplotlib) are imported lazily inside the functions that need them.
"""
