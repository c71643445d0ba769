"""Artefact manifests: what every checkpoint, ONNX model, INT8 model and engine travels with.

A manifest is a JSON sidecar ``<artefact>.json`` holding the producer and its version, the sha256
of the artefact and of the inputs it was made from, the contract (labels, preprocessing, crop
policy) and the precision. Every loader calls :func:`verify` before trusting a file, so a truncated
download, a model from another producer version or an engine for another device is refused with a
message that says what to do instead of producing quietly wrong predictions.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union

from .atomic import atomic_write
from .errors import ManifestError

PRODUCER = "fer-edge"
#: Bumped when the manifest layout changes incompatibly.
SCHEMA_VERSION = 1
KINDS = ("checkpoint", "onnx", "int8_onnx", "engine", "dataset", "calibration_cache", "stage")
PRECISIONS = ("fp32", "fp16", "int8", "best", "mixed", "none")


def producer_version() -> str:
    from fer_edge import __version__
    return __version__


def sha256_file(path: Union[str, os.PathLike], chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes (streamed, so large engines do not need to fit in memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sidecar_path(artefact: Union[str, os.PathLike]) -> Path:
    """``model.onnx`` → ``model.onnx.json``."""
    p = Path(artefact)
    return p.with_name(p.name + ".json")


@dataclass
class Manifest:
    """The sidecar of one artefact. ``inputs`` maps a role (``checkpoint``, ``fp32_onnx``) to sha256."""

    kind: str
    sha256: str = ""
    precision: str = "fp32"
    labels: List[str] = field(default_factory=list)
    preprocess: Dict[str, Any] = field(default_factory=dict)
    crop: Dict[str, Any] = field(default_factory=dict)
    inputs: Dict[str, str] = field(default_factory=dict)
    extra: Dict[str, Any] = field(default_factory=dict)
    producer: str = PRODUCER
    producer_version: str = field(default_factory=producer_version)
    schema_version: int = SCHEMA_VERSION
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    host: str = field(default_factory=platform.node)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ManifestError(f"manifest kind {self.kind!r} is not one of {list(KINDS)}")
        if self.precision not in PRECISIONS:
            raise ManifestError(f"manifest precision {self.precision!r} is not one of {list(PRECISIONS)}")

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], where: str = "manifest") -> Manifest:
        if not isinstance(d, Mapping):
            raise ManifestError(f"{where}: expected a JSON object, got {type(d).__name__}")
        known = set(cls.__dataclass_fields__)
        missing = {"kind", "producer", "producer_version", "schema_version"} - set(d)
        if missing:
            raise ManifestError(f"{where}: missing fields {sorted(missing)}; re-create the artefact "
                                "with this version of fer-edge")
        kwargs = {k: v for k, v in d.items() if k in known}
        types = {"labels": list, "preprocess": dict, "crop": dict, "inputs": dict, "extra": dict,
                 "sha256": str, "producer": str, "producer_version": str, "kind": str,
                 "precision": str, "schema_version": int}
        for k, t in types.items():
            if k in kwargs and not isinstance(kwargs[k], t):
                raise ManifestError(f"{where}: field {k!r} should be {t.__name__}, "
                                    f"got {type(kwargs[k]).__name__}")
        return cls(**kwargs)


def write_manifest(artefact: Union[str, os.PathLike], manifest: Manifest,
                   hash_artefact: bool = True) -> Path:
    """Fill ``manifest.sha256`` from the artefact (unless told not to) and write the sidecar atomically."""
    if hash_artefact:
        manifest.sha256 = sha256_file(artefact)
    return atomic_write(sidecar_path(artefact), manifest.to_json())


def read_manifest(artefact: Union[str, os.PathLike]) -> Manifest:
    """Read the sidecar of ``artefact``; a missing or corrupt one is a :class:`ManifestError`."""
    side = sidecar_path(artefact)
    if not side.is_file():
        raise ManifestError(f"{artefact}: no manifest found at {side}; this file was not made by "
                            f"fer-edge (or its .json sidecar was not copied with it) — re-export it "
                            f"with `fer-edge` or copy the sidecar next to it")
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{side}: manifest is not valid JSON ({exc}); re-create the artefact") from exc
    return Manifest.from_dict(data, where=str(side))


def check_compatible(manifest: Manifest, where: str) -> None:
    """Refuse manifests of another producer, schema, or major.minor producer version."""
    if manifest.producer != PRODUCER:
        raise ManifestError(f"{where}: made by {manifest.producer!r}, not {PRODUCER!r}; "
                            "re-create it with fer-edge")
    if manifest.schema_version != SCHEMA_VERSION:
        raise ManifestError(f"{where}: manifest schema {manifest.schema_version} but this fer-edge reads "
                            f"schema {SCHEMA_VERSION}; re-create the artefact with fer-edge {producer_version()}")
    ours = producer_version().split(".")[:2]
    theirs = str(manifest.producer_version).split(".")[:2]
    if ours != theirs:
        raise ManifestError(f"{where}: made by fer-edge {manifest.producer_version}, this is "
                            f"{producer_version()}; re-create it with this version (or install "
                            f"fer-edge=={manifest.producer_version})")


def verify(artefact: Union[str, os.PathLike], kinds: Optional[Sequence[str]] = None,
           check_hash: bool = True) -> Manifest:
    """Read and check the manifest of ``artefact``: producer, version, kind and the file's sha256.

    Every loader of an artefact goes through here. Returns the manifest on success.
    """
    path = Path(artefact)
    if not path.is_file():
        raise ManifestError(f"{path}: file not found")
    manifest = read_manifest(path)
    check_compatible(manifest, str(path))
    if kinds is not None and manifest.kind not in kinds:
        raise ManifestError(f"{path}: is a {manifest.kind!r} artefact, expected one of {list(kinds)}")
    if check_hash:
        actual = sha256_file(path)
        if actual != manifest.sha256:
            raise ManifestError(
                f"{path}: sha256 {actual[:12]}… does not match its manifest ({manifest.sha256[:12]}…); "
                "the file was changed, truncated or replaced after it was made — re-create it "
                "(or copy the matching file and its .json sidecar together)")
    return manifest


def verify_parent(manifest: Manifest, role: str, parent: Union[str, os.PathLike], where: str) -> None:
    """Refuse an artefact whose recorded parent (``inputs[role]``) is not the file at ``parent``."""
    expected = manifest.inputs.get(role)
    if expected is None:
        raise ManifestError(f"{where}: manifest records no {role!r} parent; re-create it with fer-edge")
    actual = sha256_file(parent)
    if actual != expected:
        raise ManifestError(f"{where}: was made from a {role} with sha256 {expected[:12]}…, but {parent} "
                            f"has {actual[:12]}…; re-create it from this {role}")
