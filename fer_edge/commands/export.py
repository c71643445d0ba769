"""``fer-edge export``: checkpoint → ONNX with the contract inside, checked and parity-gated.

  fer-edge export --checkpoint runs/NAME/best.pt --out model.onnx
  fer-edge export --checkpoint best.pt --out model_b1.onnx --batch 1 --parity-images data/target/test

Writes ``model.onnx`` and its manifest ``model.onnx.json`` only when every check passed: ONNX full
check, shape inference, onnxslim, the TensorRT operator allow-list and ONNX Runtime vs PyTorch
parity (max |Δprob| ≤ 1e-4, 100 % argmax agreement at batch 1, 8 and 32).
"""
from __future__ import annotations

import argparse
import json

from fer_edge.cli import add_config_arguments, load_args_config

HELP = "export a checkpoint to ONNX (contract in metadata, TensorRT op check, parity gate)"
DESCRIPTION = __doc__


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_config_arguments(p)
    p.add_argument("--checkpoint", required=True, help="checkpoint from `fer-edge train` (with its .json sidecar)")
    p.add_argument("--out", default="model.onnx", help="ONNX file to write (default: model.onnx)")
    p.add_argument("--opset", type=int, default=None, help="ONNX opset (default: export.opset, 17)")
    p.add_argument("--batch", default=None, help="'dynamic' (default) or a static batch size such as 1")
    p.add_argument("--parity-images", default=None, metavar="DIR",
                   help="face crops for the parity gate (default: synthetic faces)")
    p.add_argument("--no-simplify", action="store_true", help="skip onnxslim")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def stage_call(args: argparse.Namespace):
    """The ``export:`` section with this command line's flags on top (the pipeline builds the same call)."""
    from fer_edge.stages import export

    return export.from_config(load_args_config(args), opset=args.opset, batch=args.batch,
                              parity_images=args.parity_images, simplify=False if args.no_simplify else None)


def run(args: argparse.Namespace) -> int:
    result = stage_call(args)(args.checkpoint, args.out)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.parity.summary())
        print(f"wrote {result.path} ({result.size_bytes / 1024:.1f} KiB) + {result.manifest_path.name}")
    return 0
