"""Where every artefact lives: the one place that names the files each stage writes.

A stage function takes the path it writes as an argument; the names below are what the verbs default to
and what the pipeline's run folder holds (``<out>/<stage>/<file>``). A file that travels with another
(its manifest, the CPU INT8 model, the calibration cache) is named *from* that artefact's path, so a
model renamed by the user keeps its companions.

The runtime needs the companions' names too (it runs ``model.int8-cpu.onnx`` in ``model.int8.onnx``'s
place on the CPU), so this module is part of the torch-free contract.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Union

from .manifest import sidecar_path as manifest_path  # ``model.onnx`` → ``model.onnx.json``, for any artefact

PathLike = Union[str, os.PathLike]

#: ``fer-edge train``: the checkpoint the label-free selector picked, and the run's summary.
CHECKPOINT = "best.pt"
TRAIN_SUMMARY = "summary.json"
#: ``fer-edge export``: the FP32 ONNX model.
ONNX = "model.onnx"
#: ``fer-edge calibrate``: TensorRT's Q/DQ INT8 model (the CPU layout, cache and report are named from it).
INT8 = "model.int8.onnx"
CPU_INT8_SUFFIX = "-cpu"
#: ``fer-edge build``: the TensorRT engine.
ENGINE = "model.engine"
#: ``fer-edge eval``: the metrics of one artefact on one dataset.
EVAL_METRICS = "metrics.json"
#: ``fer-edge bench``: the side-by-side measurement.
BENCH = "bench.json"
#: ``fer-edge run``: one line per frame, and the run's summary.
RESULTS = "results.jsonl"
RUN_SUMMARY = "summary.json"


def with_manifest(artefact: PathLike) -> List[Path]:
    """``[artefact, its manifest]``: the pair a stage's outputs list names."""
    return [Path(artefact), manifest_path(artefact)]


def int8_path(fp32: PathLike) -> Path:
    """``model.onnx`` → ``model.int8.onnx``: where ``fer-edge calibrate`` writes by default."""
    p = Path(fp32)
    return p.with_name(p.stem + ".int8.onnx")


def cpu_artefact_path(int8: PathLike) -> Path:
    """``model.int8.onnx`` → ``model.int8-cpu.onnx``: where calibration writes ONNX Runtime's CPU INT8 layout."""
    p = Path(int8)
    return p.with_name(p.stem + CPU_INT8_SUFFIX + (p.suffix or ".onnx"))


def calib_cache_path(int8: PathLike) -> Path:
    """``model.int8.onnx`` → ``model.int8.cache``: TensorRT's calibration cache."""
    p = Path(int8)
    return p.with_suffix(".cache") if p.suffix == ".onnx" else p.with_name(p.name + ".cache")


def calib_report_path(int8: PathLike) -> Path:
    """``model.int8.onnx`` → ``model.int8.json`` (and ``.md`` beside it): the calibration report."""
    p = Path(int8)
    return p.with_suffix(".json") if p.suffix == ".onnx" else p.with_name(p.name + ".report.json")


def engine_path(model: PathLike) -> Path:
    """``model.int8.onnx`` → ``model.int8.engine``: where ``fer-edge build`` writes by default."""
    return Path(model).with_suffix(".engine")


def int8_artefacts(int8: PathLike) -> List[Path]:
    """Both INT8 models calibration writes, each with its manifest."""
    return with_manifest(int8) + with_manifest(cpu_artefact_path(int8))


@dataclass(frozen=True)
class RunFolder:
    """The pipeline's run folder: one sub-folder per stage, each artefact under its stage's name."""

    root: Path

    def stage(self, name: str) -> Path:
        return Path(self.root) / name

    def train_run(self, method: str) -> Path:
        return self.stage("train") / method

    def checkpoint(self, method: str) -> Path:
        return self.train_run(method) / CHECKPOINT

    @property
    def onnx(self) -> Path:
        return self.stage("export") / ONNX

    @property
    def int8(self) -> Path:
        return self.stage("calibrate") / INT8

    @property
    def engine(self) -> Path:
        return self.stage("build") / ENGINE
