"""Export: interface, contract metadata + sidecar, parity gate, refusals, TensorRT allow-list."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from fer_edge.export.images import synthetic_faces
from fer_edge.export.metadata import get_metadata
from fer_edge.export.onnx import TRAINING_ONLY, check_interface, export_onnx, parse_batch
from fer_edge.export.parity import check_parity
from fer_edge.export.trt_ops import check_trt_ops, unsupported_nodes
from fer_edge.runtime.backends.base import META_CHECKPOINT_SHA256, META_CONTRACT, META_PRECISION, META_PRODUCER_VERSION
from fer_edge.runtime.contract import LABELS, PreprocessSpec
from fer_edge.runtime.crop import CropPolicy
from fer_edge.runtime.errors import ConfigError, ManifestError, ModelError
from fer_edge.runtime.manifest import read_manifest, sha256_file, sidecar_path
from fer_edge.train.checkpoint import save_checkpoint
from fer_edge.train.models import ExportWrapper, FerNet, ModelSpec

SPEC = PreprocessSpec(size=32)
CROP = {"margin": 0.2, "detector": "haar"}


def make_checkpoint(path: Path, backbone: str = "tiny", seed: int = 0) -> Path:
    torch.manual_seed(seed)
    net = FerNet(ModelSpec(backbone=backbone, feature_dim=32, width=0.25 if backbone != "tiny" else 0.5)).eval()
    save_checkpoint(path, net, LABELS, SPEC, CROP)
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    ck = make_checkpoint(root / "best.pt")
    res = export_onnx(ck, root / "model.onnx")
    return ck, res


def test_parity_at_batches_1_8_32(exported):
    _, res = exported
    assert res.parity.passed
    assert [b.batch for b in res.parity.batches] == [1, 8, 32]
    assert all(b.n >= b.batch and b.argmax_agreement == 1.0 for b in res.parity.batches)
    assert res.parity.max_abs_diff <= 1e-4


def test_parity_on_given_images(tmp_path, exported):
    ck, _ = exported
    img_dir = tmp_path / "faces" / "happy"
    img_dir.mkdir(parents=True)
    for i, f in enumerate(synthetic_faces(12, 48, seed=5)):
        cv2.imwrite(str(img_dir / f"{i}.png"), cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    res = export_onnx(ck, tmp_path / "m.onnx", parity_images=tmp_path / "faces")
    assert res.parity.passed and res.parity.n_inputs == 12 and "images" in res.parity.source


def test_metadata_and_sidecar_consistent(exported):
    ck, res = exported
    model = onnx.load(str(res.path))
    meta = get_metadata(model)
    contract = json.loads(meta[META_CONTRACT])
    manifest = read_manifest(res.path)
    assert contract["labels"] == list(LABELS) == manifest.labels
    assert contract["preprocess"] == SPEC.to_dict() == manifest.preprocess
    assert contract["crop"] == CropPolicy.from_dict(CROP).to_dict() == manifest.crop  # the whole policy, typed
    assert meta[META_PRECISION] == "fp32" == manifest.precision
    assert meta[META_CHECKPOINT_SHA256] == sha256_file(ck) == manifest.inputs["checkpoint"]
    assert meta[META_PRODUCER_VERSION] == manifest.producer_version
    assert manifest.kind == "onnx" and manifest.sha256 == sha256_file(res.path)
    from fer_edge.runtime.model import describe_onnx

    info = describe_onnx(res.path)  # the runtime reads the contract straight from the model
    assert info.contract.preprocess == SPEC and list(info.contract.labels) == list(LABELS)


def _interface(path):
    m = onnx.load(str(path))

    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]
    return ([(i.name, dims(i)) for i in m.graph.input], [(o.name, dims(o)) for o in m.graph.output])


@pytest.mark.parametrize("backbone", ["tiny", "mobilenet", "resnet18"])
def test_every_backbone_same_interface_no_training_nodes(tmp_path, backbone):
    ck = make_checkpoint(tmp_path / f"{backbone}.pt", backbone)
    res = export_onnx(ck, tmp_path / f"{backbone}.onnx")
    assert _interface(res.path) == ([("input", ["batch", 1, 32, 32])],
                                    [("logits", ["batch", 7]), ("probs", ["batch", 7])])
    model = onnx.load(str(res.path))
    names = " ".join(n.name.lower() for n in model.graph.node)
    assert not any(t in names for t in TRAINING_ONLY)
    assert "BatchNormalization" not in {n.op_type for n in model.graph.node}  # folded into Conv
    assert res.parity.passed


def test_static_batch(tmp_path, exported):
    ck, _ = exported
    res = export_onnx(ck, tmp_path / "b4.onnx", batch="4")
    assert _interface(res.path)[0] == [("input", [4, 1, 32, 32])]
    assert [b.batch for b in res.parity.batches] == [4]
    with pytest.raises(ConfigError):
        parse_batch("zero")


def test_training_only_node_is_refused(exported):
    _, res = exported
    model = onnx.load(str(res.path))
    model.graph.node[-2].name = "/method/discriminator/Gemm"
    with pytest.raises(ModelError, match="discriminator"):
        check_interface(model, (1, 32, 32), 7, None)


def test_trt_allow_list_names_the_node(exported):
    _, res = exported
    model = onnx.load(str(res.path))
    assert check_trt_ops(model)["Conv"] == 3
    model.graph.node[0].op_type = "NonMaxSuppression"
    model.graph.node[1].domain = "com.microsoft"
    assert len(unsupported_nodes(model)) == 2
    with pytest.raises(ModelError, match=model.graph.node[0].name):
        check_trt_ops(model)


def test_parity_gate_reports_worst_samples(exported):
    import onnxruntime as ort

    _, res = exported
    torch.manual_seed(1)
    other = ExportWrapper(FerNet(ModelSpec(backbone="tiny", feature_dim=32, width=0.5))).eval()
    x = np.random.default_rng(0).normal(0, 1, (16, 1, 32, 32)).astype(np.float32)
    sess = ort.InferenceSession(str(res.path), providers=["CPUExecutionProvider"])
    rep = check_parity(other, sess, x, [f"s{i}" for i in range(16)], batches=(1, 8), atol=1e-4)
    assert not rep.passed and rep.max_abs_diff > 1e-4 and len(rep.worst) == 5
    keys = [(w["torch_argmax"] == w["onnx_argmax"], -w["abs_diff"]) for w in rep.worst]
    assert keys == sorted(keys)  # disagreements first, then the largest |Δprob|
    assert "worst" in rep.summary()


def test_failed_parity_writes_nothing_and_cli_exits_1(tmp_path, exported):
    from fer_edge.cli import main

    ck, _ = exported
    out = tmp_path / "bad.onnx"
    with pytest.raises(ModelError, match="NOT written"):
        export_onnx(ck, out, atol=-1.0)
    assert not out.exists() and not sidecar_path(out).exists()
    assert main(["export", "--checkpoint", str(ck), "--out", str(out), "--set", "export.parity_atol=-1"]) == 1
    assert main(["export", "--checkpoint", str(ck), "--out", str(out)]) == 0 and out.is_file()


def test_refuses_manifest_less_checkpoint(tmp_path):
    ck = make_checkpoint(tmp_path / "a.pt")
    sidecar_path(ck).unlink()
    with pytest.raises(ManifestError, match="no manifest"):
        export_onnx(ck, tmp_path / "a.onnx")


def test_refuses_other_producer_version(tmp_path):
    ck = make_checkpoint(tmp_path / "a.pt")
    side = sidecar_path(ck)
    d = json.loads(side.read_text())
    d["producer_version"] = "99.0.0"
    side.write_text(json.dumps(d))
    with pytest.raises(ManifestError, match="99.0.0"):
        export_onnx(ck, tmp_path / "a.onnx")


def _rehash(ck: Path) -> None:
    side = sidecar_path(ck)
    d = json.loads(side.read_text())
    d["sha256"] = sha256_file(ck)
    side.write_text(json.dumps(d))


def test_refuses_truncated_checkpoint(tmp_path):
    ck = make_checkpoint(tmp_path / "a.pt")
    with open(ck, "r+b") as fh:
        fh.truncate(ck.stat().st_size // 2)
    with pytest.raises(ManifestError, match="sha256"):
        export_onnx(ck, tmp_path / "a.onnx")
    _rehash(ck)  # even with a manifest that matches, a truncated file is refused by the loader
    with pytest.raises(ModelError, match="truncated"):
        export_onnx(ck, tmp_path / "a.onnx")


class Payload:
    def __reduce__(self):
        return (print, ("pickle payload executed",))


def test_refuses_pickle_payload(tmp_path):
    ck = make_checkpoint(tmp_path / "a.pt")
    torch.save({"state_dict": {}, "model": {}, "evil": Payload()}, ck)
    _rehash(ck)
    with pytest.raises(ModelError, match="weights_only|code"):
        export_onnx(ck, tmp_path / "a.onnx")


def test_every_training_method_exports_the_same_interface(tmp_path):
    """Methods wrap the FerNet with discriminators/decoders; only ``inference_module()`` reaches ONNX."""
    from fer_edge.train.config import TrainConfig
    from fer_edge.train.methods import METHODS, build_method

    interfaces = set()
    for name in sorted(METHODS):
        torch.manual_seed(0)
        net = FerNet(ModelSpec(backbone="tiny", feature_dim=32, width=0.5))
        method = build_method(name, TrainConfig(), net, LABELS, num_identities=4)
        ck = tmp_path / f"{name}.pt"
        save_checkpoint(ck, method.inference_module().eval(), LABELS, SPEC, CROP)
        res = export_onnx(ck, tmp_path / f"{name}.onnx")
        interfaces.add(repr(_interface(res.path)))
        nodes = " ".join(n.name.lower() for n in onnx.load(str(res.path)).graph.node)
        assert not any(t in nodes for t in TRAINING_ONLY), name
        assert res.parity.passed, name
    assert len(interfaces) == 1


def test_flip_average_is_in_the_exported_graph(tmp_path):
    """``model.flip_average``: eval-mode logits are mirror-invariant, training passes are not, and the exported ONNX
    computes the same average (parity at every batch, TensorRT allow-list intact)."""
    import onnxruntime as ort

    torch.manual_seed(0)
    net = FerNet(ModelSpec(backbone="tiny", feature_dim=32, width=0.5, flip_average=True)).eval()
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net(x), net(x.flip(-1)), atol=1e-5)
        plain = FerNet(ModelSpec(backbone="tiny", feature_dim=32, width=0.5)).eval()
        plain.load_state_dict(net.state_dict())
        assert torch.allclose(net(x), (plain(x) + plain(x.flip(-1))) / 2, atol=1e-5)  # linear head: mean of logits
        net.train()
        assert not torch.allclose(net(x), net(x.flip(-1)), atol=1e-5)
    net.eval()
    ck = tmp_path / "best.pt"
    save_checkpoint(ck, net, LABELS, SPEC, CROP)
    res = export_onnx(ck, tmp_path / "m.onnx")
    assert res.parity.passed and not unsupported_nodes(onnx.load(str(tmp_path / "m.onnx")))
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    a = sess.run(["logits"], {"input": x.numpy()})[0]
    b = sess.run(["logits"], {"input": x.flip(-1).numpy().copy()})[0]
    assert np.allclose(a, b, atol=1e-4)
