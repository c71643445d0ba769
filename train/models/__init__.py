"""Networks in plain torch.nn: backbones and the FerNet classifier that export ships."""
from .backbones import BACKBONES, build_backbone
from .fernet import ExportWrapper, FerNet, ModelSpec

__all__ = ["BACKBONES", "build_backbone", "ExportWrapper", "FerNet", "ModelSpec"]
