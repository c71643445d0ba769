"""PyTorch checkpoint → ONNX that carries its own contract, checked and parity-gated.

``export_onnx`` loads a checkpoint through :func:`fer_edge.train.checkpoint.load_checkpoint`
(manifest verified, ``weights_only=True``), exports only ``ExportWrapper(FerNet)`` (input ``input``
NCHW float32 → ``logits``, ``probs``), checks the graph (full ONNX checker, strict shape inference,
onnxslim, TensorRT operator allow-list, no training-only node), runs the parity gate against
PyTorch and only then writes the model atomically with its contract in ``metadata_props`` and a
``.json`` manifest sidecar. A model that fails any step is never written.
"""
from __future__ import annotations

import io
import logging
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import onnx

from fer_edge.runtime.atomic import atomic_write
from fer_edge.runtime.backends.base import INPUT_NAME, OUTPUT_LOGITS, OUTPUT_PROBS
from fer_edge.runtime.contract import PreprocessSpec
from fer_edge.runtime.crop import CropPolicy
from fer_edge.runtime.errors import ConfigError, FerEdgeError, ModelError
from fer_edge.runtime.manifest import Manifest, sha256_bytes, sha256_file, write_manifest

from .images import dataset_arrays, load_folder, synthetic_faces
from .metadata import contract_metadata, set_metadata
from .parity import DEFAULT_BATCHES, ParityReport, check_parity
from .trt_ops import check_trt_ops

log = logging.getLogger(__name__)

#: Substrings of module names that must never appear in an exported graph (training-only parts).
TRAINING_ONLY = ("discriminator", "decoder", "adversary", "grl", "pose_head", "identity_head", "domain_head")
PARITY_MAX_IMAGES = 256
SYNTHETIC_PARITY_INPUTS = 64
SYNTHETIC_DOMAIN = "cabin-nir"  # the default deployment camera of the synthetic world


@dataclass
class ExportResult:
    """What ``export_onnx`` produced; ``parity`` is the gate's report."""

    path: Path
    manifest_path: Path
    sha256: str
    opset: int
    batch: str
    size_bytes: int
    seconds: float
    parity: ParityReport
    ops: Dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        d = asdict(self)
        d["path"], d["manifest_path"] = str(self.path), str(self.manifest_path)
        return d


def parse_batch(batch: Union[str, int, None]) -> Optional[int]:
    """``"dynamic"``/None → None (dynamic axis); ``"8"``/8 → 8 (static, for DLA-style targets)."""
    if batch is None or str(batch).strip().lower() == "dynamic":
        return None
    try:
        n = int(str(batch).strip())
    except ValueError:
        raise ConfigError(f"export batch {batch!r}: use 'dynamic' or a positive integer") from None
    if n < 1:
        raise ConfigError(f"export batch {batch!r}: must be >= 1")
    return n


def torch_to_onnx(module, input_shape: Tuple[int, int, int], opset: int,
                  static_batch: Optional[int]) -> onnx.ModelProto:
    """Export with the TorchScript-based exporter (``dynamo=False``).

    Why not the dynamo exporter torch 2.13 defaults to: on this network it took ~10 s instead of
    ~0.4 s, could not honour opset 17 (its version converter fails and leaves opset 18), turned
    GlobalAveragePool into ReduceMean and named nodes ``node_Conv_397`` — the legacy exporter keeps
    module paths (``/net/backbone/body/...``), which the training-only check, the sensitivity report
    and TensorRT's layer names all rely on. In eval mode it folds BatchNorm into Conv
    (``do_constant_folding``), which onnxslim completes.
    """
    import torch

    batch = static_batch or 2
    dummy = torch.zeros((batch, *input_shape), dtype=torch.float32)
    dynamic_axes = None if static_batch else {INPUT_NAME: {0: "batch"}, OUTPUT_LOGITS: {0: "batch"},
                                              OUTPUT_PROBS: {0: "batch"}}
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (dummy,), buf, input_names=[INPUT_NAME], output_names=[OUTPUT_LOGITS, OUTPUT_PROBS],
                          opset_version=opset, dynamic_axes=dynamic_axes, do_constant_folding=True,
                          training=torch.onnx.TrainingMode.EVAL, dynamo=False)
    return onnx.load_from_string(buf.getvalue())


def check_graph(model: onnx.ModelProto, simplify: bool = True, where: str = "model") -> onnx.ModelProto:
    """Full checker + strict shape inference, onnxslim, then the checks again on the slim graph."""
    try:
        onnx.checker.check_model(model, full_check=True)
        model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise ModelError(f"{where}: exported graph is invalid ({str(exc).splitlines()[0]})") from exc
    if simplify:
        import onnxslim

        slim = onnxslim.slim(model)
        if not isinstance(slim, onnx.ModelProto):
            raise ModelError(f"{where}: onnxslim returned no model")
        onnx.checker.check_model(slim, full_check=True)
        model = onnx.shape_inference.infer_shapes(slim, check_type=True, strict_mode=True)
    return model


def check_interface(model: onnx.ModelProto, input_shape: Tuple[int, int, int], num_classes: int,
                    static_batch: Optional[int], where: str = "model") -> None:
    """The graph interface every consumer relies on: ``input`` [B,C,H,W] → ``logits``, ``probs`` [B,K]."""
    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    b = static_batch or "batch"
    ins = {vi.name: dims(vi) for vi in model.graph.input}
    outs = {vi.name: dims(vi) for vi in model.graph.output}
    want_in = {INPUT_NAME: [b, *input_shape]}
    want_out = {OUTPUT_LOGITS: [b, num_classes], OUTPUT_PROBS: [b, num_classes]}
    if ins != want_in or outs != want_out:
        raise ModelError(f"{where}: graph interface {ins} → {outs} is not the expected {want_in} → {want_out}")
    bad = [n.name for n in model.graph.node if any(t in n.name.lower() for t in TRAINING_ONLY)]
    if bad:
        raise ModelError(f"{where}: training-only modules leaked into the graph: {bad[:10]}; export the FerNet "
                         "returned by the method's inference_module()")
    leftover = [n.name for n in model.graph.node if n.op_type == "BatchNormalization"]
    if leftover:
        log.warning("%s: %d BatchNormalization node(s) not folded into Conv: %s", where, len(leftover), leftover[:5])


def synthetic_target_crops(n: int, spec: PreprocessSpec, policy: CropPolicy, domain: str = SYNTHETIC_DOMAIN):
    """``n`` faces rendered by the synthetic world in the deployment-camera domain and cut with the
    model's crop policy; the simple blob faces of ``images.synthetic_faces`` if the renderer is absent."""
    try:
        from fer_edge.data.synth.sample import render_crop

        faces = [render_crop(domain, i, 0, list(range(16)), spec.size, policy)[0] for i in range(n)]
        return faces, f"synthetic {domain} crops"
    except (ImportError, ValueError, KeyError, FerEdgeError) as exc:
        log.debug("synthetic world unavailable for parity inputs (%s); using simple synthetic faces", exc)
        return synthetic_faces(n, spec.size), "synthetic"


def parity_inputs(parity_images: Optional[Union[str, Path]], spec: PreprocessSpec, labels,
                  policy: Optional[CropPolicy] = None) -> Tuple[np.ndarray, list, str]:
    """(inputs, names, source): the given folder through the one ``preprocess``, else synthetic target crops."""
    if parity_images:
        from fer_edge.runtime.errors import DataError

        ds = load_folder(parity_images, labels)
        x, _, paths, skipped = dataset_arrays(ds, spec, limit=PARITY_MAX_IMAGES)
        if len(x) == 0:
            raise DataError(f"{parity_images}: no usable image for the parity check ({len(skipped)} failed to "
                            f"decode/preprocess{': ' + skipped[0] if skipped else ''})")
        return x, paths, f"images from {parity_images}"
    from fer_edge.runtime.contract import preprocess

    faces, source = synthetic_target_crops(SYNTHETIC_PARITY_INPUTS, spec, policy or CropPolicy())
    return np.stack([preprocess(f, spec) for f in faces]), [f"{source} #{i}" for i in range(len(faces))], source


def export_onnx(checkpoint: Union[str, Path], out: Union[str, Path], opset: int = 17,
                batch: Union[str, int] = "dynamic", parity_images: Optional[Union[str, Path]] = None,
                simplify: bool = True, atol: float = 1e-4) -> ExportResult:
    """Export ``checkpoint`` to ``out`` (+ ``out.json``); raises ModelError when any check or parity fails."""
    from fer_edge.train.checkpoint import contract_of, load_checkpoint
    from fer_edge.train.models import ExportWrapper

    t0 = time.perf_counter()
    checkpoint, out = Path(checkpoint), Path(out)
    static_batch = parse_batch(batch)
    if not 13 <= int(opset) <= 21:
        raise ConfigError(f"export opset {opset}: use 13..21 (17 is what TensorRT 8.6-10.x parse best)")
    try:
        net, ck_manifest = load_checkpoint(checkpoint)
    except OSError as exc:  # torch's zip reader raises a bare OSError on some truncated files
        raise ModelError(f"{checkpoint}: not a loadable fer-edge checkpoint ({exc}); it may be truncated — "
                         "retrain or re-copy it") from exc
    spec = PreprocessSpec.from_dict(ck_manifest.preprocess)
    if spec.channels != net.spec.in_channels:
        raise ModelError(f"{checkpoint}: preprocessing gives {spec.channels} channel(s) but the network takes "
                         f"{net.spec.in_channels}; the checkpoint's manifest is inconsistent — retrain")
    wrapper = ExportWrapper(net).eval()
    log.info("export: %s (%s, %d classes) → %s, opset %d, batch %s", checkpoint, net.spec.backbone,
             net.spec.num_classes, out, opset, static_batch or "dynamic")
    model = torch_to_onnx(wrapper, spec.input_shape, int(opset), static_batch)
    model = check_graph(model, simplify=simplify, where=str(out))
    check_interface(model, spec.input_shape, net.spec.num_classes, static_batch, where=str(out))
    ops = check_trt_ops(model, where=str(out))
    log.info("export: graph checked (%d nodes, %s)", len(model.graph.node),
             ", ".join(f"{k}×{v}" for k, v in sorted(ops.items())))

    ck_sha = ck_manifest.sha256 or sha256_file(checkpoint)
    contract = contract_of(ck_manifest)
    set_metadata(model, contract_metadata(contract, ck_sha, "fp32"))
    model.producer_name, model.doc_string = "fer-edge", f"fer-edge FerNet ({net.spec.backbone}) from {checkpoint.name}"
    data = model.SerializeToString()

    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")  # polite on a shared CPU
    session = ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])
    x, names, source = parity_inputs(parity_images, spec, contract.labels, contract.policy)
    batches = (static_batch,) if static_batch else DEFAULT_BATCHES
    report = check_parity(wrapper, session, x, names, batches=batches, atol=atol, source=source)
    log.info("export: %s", report.summary().splitlines()[0])
    if not report.passed:
        raise ModelError(f"{out}: ONNX Runtime disagrees with PyTorch, model NOT written.\n{report.summary()}")

    atomic_write(out, data)
    body = contract.to_dict()
    manifest = Manifest(kind="onnx", precision="fp32", labels=body["labels"], preprocess=body["preprocess"],
                        crop=body["crop"],
                        inputs={"checkpoint": ck_sha},
                        extra={"model": net.spec.to_dict(), "opset": int(opset), "batch": static_batch or "dynamic",
                               "exporter": "torch.onnx (TorchScript, dynamo=False)", "simplified": bool(simplify),
                               "ops": ops, "parity": report.to_dict()})
    side = write_manifest(out, manifest)
    if manifest.sha256 != sha256_bytes(data):
        raise ModelError(f"{out}: file on disk differs from what was exported; disk full or concurrent writer?")
    result = ExportResult(path=out, manifest_path=side, sha256=manifest.sha256, opset=int(opset),
                          batch=str(static_batch or "dynamic"), size_bytes=len(data),
                          seconds=time.perf_counter() - t0, parity=report, ops=ops)
    log.info("export: wrote %s (%.1f KiB, sha256 %s…) and %s in %.1f s", out, len(data) / 1024, manifest.sha256[:12],
             side.name, result.seconds)
    return result
