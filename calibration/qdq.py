"""Explicit INT8 quantization (QuantizeLinear/DequantizeLinear) with ONNX Runtime's quantizer.

Two Q/DQ flavours come from the same ranges (one calibration): ``tensorrt`` and ``cpu``.

``tensorrt`` follows TensorRT's explicit-quantization rules: symmetric signed int8 with zero-point 0 for
activations (per tensor) and weights (per output channel, axis 0); biases stay float (``QuantizeBias=False``
— TensorRT fuses a float bias into the INT8 convolution itself and an int32 bias with ORT's derived scale is
not what it expects); Softmax is never quantized and the output of Gemm/MatMul is not (so ``logits`` and
``probs`` stay float). ReLU/Clip stay explicit in the graph (``QDQKeepRemovableActivations``) so TensorRT
sees the real network. Ranges are computed once per image set and cached (ORT's JSON range cache), so the
accuracy gate can re-quantize with different float fallbacks without re-running calibration.

``cpu`` is the layout ONNX Runtime's x86 kernels are fast at: uint8 activations with their own zero
points (asymmetric, so a post-ReLU tensor uses all 256 levels) and signed int8 per-channel symmetric
weights (U8S8, VNNI's ``vpdpbusd``); ReLU is folded into the preceding Q/DQ (``QDQKeepRemovableActivations``
off) and biases are int32, so every Conv/Gemm is a complete DQ→op→Q group that ORT's level-2 QDQ
transformers fuse into ``QLinearConv``/``QGemm`` with no DQ→float→Q round trip between layers. The
symmetric S8 flavour leaves ``Conv→Relu→Q`` unfused (measured: 9 of 20 ResNet-18 convolutions in int8,
the rest in float behind DequantizeLinear), which is why it is slower than FP32 on the CPU. The CPU
flavour's ranges are the TensorRT flavour's with ReLU outputs clamped at 0 (:func:`..cpu.cpu_ranges`).
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import onnx

from fer_edge.runtime.backends.base import INPUT_NAME
from fer_edge.runtime.errors import ConfigError, ModelError

log = logging.getLogger(__name__)

#: Operators whose inputs get Q/DQ. Softmax is deliberately absent: the probabilities stay float.
QUANT_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "GlobalAveragePool", "AveragePool",
             "MaxPool", "Flatten", "Reshape", "Concat", "Relu", "Clip")
#: Ops that carry weights or join branches: the layers the sensitivity pass may keep in float.
SENSITIVITY_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Mul", "Concat")
METHODS = ("entropy", "minmax", "percentile")
#: The Q/DQ layouts one calibration writes: TensorRT's (``model.int8.onnx``) and ONNX Runtime CPU's.
FLAVOURS = ("tensorrt", "cpu")


def extra_options(method: str, flavour: str = "tensorrt") -> Dict[str, object]:
    if flavour not in FLAVOURS:
        raise ConfigError(f"Q/DQ flavour {flavour!r} is not one of {list(FLAVOURS)}")
    cpu = flavour == "cpu"
    opts: Dict[str, object] = {
        "ActivationSymmetric": not cpu,
        "WeightSymmetric": True,
        "QuantizeBias": cpu,
        "QDQKeepRemovableActivations": not cpu,
        "OpTypesToExcludeOutputQuantization": ["Gemm", "MatMul", "Softmax"],
    }
    if method == "percentile":
        opts["CalibPercentile"] = 99.999
    return opts


def calibration_method(method: str):
    from onnxruntime.quantization import CalibrationMethod

    table = {"entropy": CalibrationMethod.Entropy, "minmax": CalibrationMethod.MinMax,
             "percentile": CalibrationMethod.Percentile}
    if method not in table:
        raise ConfigError(f"calibration method {method!r} is not one of {list(METHODS)}")
    return table[method]


def static_batch(model: Union[onnx.ModelProto, str, os.PathLike]) -> Optional[int]:
    """The fixed batch size of the model's input, or None when it is dynamic."""
    m = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model), load_external_data=False)
    dim = m.graph.input[0].type.tensor_type.shape.dim[0]
    return dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else None


def make_reader(x: np.ndarray, batch: int):
    """An ORT ``CalibrationDataReader`` over preprocessed inputs (a static batch drops the remainder)."""
    from onnxruntime.quantization import CalibrationDataReader

    class ArrayReader(CalibrationDataReader):
        def __init__(self) -> None:
            n = len(x) // batch * batch if batch > 1 else len(x)
            self.chunks = [x[i:i + batch] for i in range(0, max(n, 0), batch)]
            self.pos = 0

        def get_next(self):
            if self.pos >= len(self.chunks):
                return None
            self.pos += 1
            return {INPUT_NAME: np.ascontiguousarray(self.chunks[self.pos - 1])}

        def rewind(self) -> None:
            self.pos = 0

        def __len__(self) -> int:
            return len(self.chunks)

    return ArrayReader()


@contextlib.contextmanager
def quiet_ort() -> Iterator[None]:
    """ORT's quantizer logs every bias copy on the root logger and prints histogram sizes; keep the
    user's log readable (its warnings still show, at --verbose everything does)."""
    root = logging.getLogger()
    level = root.level
    if not log.isEnabledFor(logging.DEBUG):
        root.setLevel(max(level, logging.WARNING))
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def pre_process(fp32_path: Union[str, os.PathLike], out_path: Union[str, os.PathLike]) -> Path:
    """ORT's recommended ``quant_pre_process`` (shape inference + basic graph optimisation); names are kept."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    try:
        with quiet_ort():
            quant_pre_process(str(fp32_path), str(out_path), skip_symbolic_shape=False)
    except Exception as exc:  # noqa: BLE001 - ORT raises assorted types for a model it cannot prepare
        raise ModelError(f"{fp32_path}: ONNX Runtime's quantization pre-processing failed "
                         f"({str(exc).splitlines()[0][:200]}); re-export it with `fer-edge export`") from exc
    return Path(out_path)


#: Histogram settings for entropy calibration. ORT's quantize_static cannot pass bin counts and defaults
#: to 128 bins for 128 quantized bins, which leaves the KL search a single candidate (the full range, i.e.
#: min-max in disguise). TensorRT's entropy calibrator uses 2048 bins, 128 quantized; so do we.
ENTROPY_BINS = {"num_bins": 2048, "num_quantized_bins": 128}


def compute_ranges(pre_path: Union[str, os.PathLike], x: np.ndarray, method: str,
                   ranges_cache: Union[str, os.PathLike]) -> Path:
    """Run calibration once and store the per-tensor ranges in ORT's JSON range cache."""
    import tempfile

    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data

    options: Dict[str, object] = {}
    if method == "entropy":
        options = dict(ENTROPY_BINS)
    elif method == "percentile":
        options = {"percentile": extra_options(method)["CalibPercentile"], "num_bins": 2048, "symmetric": True}
    batch = static_batch(pre_path) or 16
    reader = make_reader(x, batch)
    if len(reader) == 0:
        raise ModelError(f"calibration: {len(x)} image(s) do not fill one batch of {batch} for this static-batch "
                         "model; give more images")
    log.info("calibrate: measuring activation ranges (%s%s) on %d images — entropy takes about a second per "
             "tensor", method, ", 2048 bins" if method == "entropy" else "", len(x))
    with tempfile.TemporaryDirectory(prefix="fer-edge-ranges-") as tmp, quiet_ort():
        calibrator = create_calibrator(Path(pre_path), list(QUANT_OPS),
                                       augmented_model_path=str(Path(tmp) / "augmented.onnx"),
                                       calibrate_method=calibration_method(method), extra_options=options)
        calibrator.collect_data(reader)
        save_tensors_data(calibrator.compute_data(), ranges_cache)
        del calibrator
    return Path(ranges_cache)


def quantize(pre_path: Union[str, os.PathLike], out_path: Union[str, os.PathLike], method: str,
             ranges_cache: Union[str, os.PathLike], x: Optional[np.ndarray] = None,
             nodes_to_exclude: Sequence[str] = (), nodes_to_quantize: Optional[Sequence[str]] = None,
             flavour: str = "tensorrt", reduce_range: bool = False) -> Path:
    """Write a Q/DQ model of ``flavour``. The first call with ``x`` computes the ranges into ``ranges_cache``;
    later calls (other exclusions, the other flavour) reuse them, so both flavours share one calibration.
    ``reduce_range`` (7-bit weights) is for the ``cpu`` flavour on x86 CPUs without VNNI only."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    if not Path(ranges_cache).is_file():
        if x is None:
            raise ModelError("quantize: neither calibration inputs nor a range cache were given")
        compute_ranges(pre_path, x, method, ranges_cache)
    with quiet_ort():
        quantize_static(str(pre_path), str(out_path), None, quant_format=QuantFormat.QDQ,
                        op_types_to_quantize=list(QUANT_OPS), per_channel=True,
                        reduce_range=bool(reduce_range and flavour == "cpu"),
                        activation_type=QuantType.QUInt8 if flavour == "cpu" else QuantType.QInt8,
                        weight_type=QuantType.QInt8,
                        nodes_to_exclude=list(nodes_to_exclude) or None,
                        nodes_to_quantize=list(nodes_to_quantize) if nodes_to_quantize else None,
                        calibrate_method=calibration_method(method), extra_options=extra_options(method, flavour),
                        calibration_cache_path=str(ranges_cache))
    return Path(out_path)


def candidate_nodes(model: onnx.ModelProto) -> List[str]:
    """Names of the nodes the sensitivity pass may keep in float, in graph order."""
    return [n.name for n in model.graph.node if n.op_type in SENSITIVITY_OPS and n.name]


@dataclass
class QDQInfo:
    """What a Q/DQ model holds, read back from the graph (used for self-checks, tests and the report)."""

    activation_scales: Dict[str, float] = field(default_factory=dict)  # tensor → per-tensor scale
    weight_scales: Dict[str, np.ndarray] = field(default_factory=dict)  # initializer → per-channel scales
    weight_axes: Dict[str, int] = field(default_factory=dict)
    zero_points: Dict[str, np.ndarray] = field(default_factory=dict)
    problems: List[str] = field(default_factory=list)
    quantized_biases: List[str] = field(default_factory=list)
    float_nodes: List[str] = field(default_factory=list)


def inspect_qdq(model: onnx.ModelProto) -> QDQInfo:
    """Read scales and zero-points, and list every departure from the TensorRT-compatible scheme."""
    from onnx import numpy_helper

    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    info = QDQInfo()
    producers = {o: n for n in model.graph.node for o in n.output}
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear"):
            continue
        if len(node.input) < 3 or node.input[2] not in inits:
            info.problems.append(f"{node.name}: no explicit zero-point")
            continue
        scale, zp = inits.get(node.input[1]), inits[node.input[2]]
        info.zero_points[node.name] = zp
        if zp.dtype != np.int8:
            info.problems.append(f"{node.name}: zero-point type {zp.dtype}, expected int8")
        if np.any(zp != 0):
            info.problems.append(f"{node.name}: non-zero zero-point {zp.ravel()[:4].tolist()}")
        if scale is None:
            info.problems.append(f"{node.name}: scale is not a constant")
            continue
        src = node.input[0]
        if node.op_type == "DequantizeLinear" and src in inits:  # a stored int8 weight or bias
            axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
            if inits[src].dtype == np.int32 or inits[src].ndim == 1:
                info.quantized_biases.append(src)
            else:
                info.weight_scales[src] = np.asarray(scale, np.float32).ravel()
                info.weight_axes[src] = axis
        elif node.op_type == "QuantizeLinear" and src not in inits:
            if np.asarray(scale).size != 1:
                info.problems.append(f"{node.name}: activation {src!r} quantized per channel")
            info.activation_scales[src] = float(np.asarray(scale, np.float32).ravel()[0])
    for node in model.graph.node:
        if node.op_type in SENSITIVITY_OPS:
            weight_dq = [producers.get(t) for t in node.input[1:2]]
            if node.op_type in ("Conv", "Gemm", "MatMul", "ConvTranspose") and not any(
                    p is not None and p.op_type == "DequantizeLinear" for p in weight_dq):
                info.float_nodes.append(node.name)
    return info


def range_summary(activation_scales: Dict[str, float], top: int = 5) -> Dict[str, object]:
    """amax = 127 × scale over all activations: min/median/max and the widest tensors (outliers show here)."""
    if not activation_scales:
        return {"tensors": 0}
    amax = {k: 127.0 * v for k, v in activation_scales.items()}
    vals = np.asarray(list(amax.values()))
    widest = sorted(amax.items(), key=lambda kv: -kv[1])[:top]
    return {"tensors": len(amax), "amax_min": float(vals.min()), "amax_median": float(np.median(vals)),
            "amax_max": float(vals.max()), "widest": [{"tensor": k, "amax": float(v)} for k, v in widest]}


def ranges_cache_from_scales(scales: Dict[str, float], path: Union[str, os.PathLike]) -> Path:
    """Write ORT's JSON range cache (MinMax) holding the symmetric ranges ±127·scale of ``scales``.

    This is how a TensorRT calibration cache becomes a Q/DQ model again: ``quantize`` with
    ``method="minmax"`` and this range cache reproduces each scale exactly (amax/127 round-trips).
    """
    from onnxruntime.quantization.calibrate import CalibrationMethod, TensorData, TensorsData, save_tensors_data

    data = {name: TensorData(lowest=np.float32(-127.0 * s), highest=np.float32(127.0 * s))
            for name, s in scales.items()}
    save_tensors_data(TensorsData(CalibrationMethod.MinMax, data), path)
    return Path(path)


def qdq_from_trt_cache(fp32_path: Union[str, os.PathLike], cache_path: Union[str, os.PathLike],
                       out_path: Union[str, os.PathLike], nodes_to_exclude: Sequence[str] = ()) -> Path:
    """A Q/DQ model whose activation scales are those of a TensorRT calibration cache (weights per channel)."""
    import tempfile

    from .cache import read_cache

    _, _, scales = read_cache(cache_path)
    with tempfile.TemporaryDirectory(prefix="fer-edge-cache-") as tmp:
        pre = pre_process(fp32_path, Path(tmp) / "pre.onnx")
        exclude = list(nodes_to_exclude) + [n for n in unranged_nodes(onnx.load(str(pre)), scales)
                                            if n not in nodes_to_exclude]
        ranges = ranges_cache_from_scales(scales, Path(tmp) / "ranges.json")
        quantize(pre, out_path, "minmax", ranges, nodes_to_exclude=exclude)
    return Path(out_path)


def unranged_nodes(model: onnx.ModelProto, scales: Dict[str, float]) -> List[str]:
    """Quantizable nodes touching an activation the cache has no scale for: a cache written after the
    accuracy gate omits the tensors of layers kept in float, so those layers stay float here too."""
    inits = {i.name for i in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    no_out_q = set(extra_options("minmax")["OpTypesToExcludeOutputQuantization"])
    missing = []
    for node in model.graph.node:
        if node.op_type not in QUANT_OPS:
            continue
        acts = [t for t in node.input if t and t not in inits]
        if node.op_type not in no_out_q:
            acts += [t for t in node.output if t not in outputs]
        if any(t not in scales for t in acts):
            missing.append(node.name)
    return missing
