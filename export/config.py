"""Config section ``export:`` (fer-edge export). Standard library only."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass
class ExportConfig:
    opset: int = 17
    batch: str = "dynamic"  # "dynamic" or a fixed batch size such as "1"
    simplify: bool = True
    parity_images: Optional[str] = None
    parity_atol: float = 1e-4
