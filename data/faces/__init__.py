"""Recorded footage → face crops under one crop policy (``fer-edge data faces`` and ``data.detect``).

``extract_faces`` turns a frames folder or a video into a crop dataset plus reports; ``cached_faces``
and ``footage_dataset`` do it once per (content, policy) so training, calibration and evaluation
share the work. Pixels come from the runtime's ``detect_and_crop``, so crops match deployment.
"""
from .cache import cache_key, cached_faces, check_crop_folder, content_hash, footage_dataset, precut_finish
from .extract import Extraction, extract_faces
from .frames import Footage, FrameRef, open_footage

__all__ = ["Extraction", "Footage", "FrameRef", "cache_key", "cached_faces", "check_crop_folder", "content_hash",
           "extract_faces", "footage_dataset", "open_footage", "precut_finish"]
