"""Tables and helpers shared by the fake TensorRT modules: versions, enum members, absent APIs."""
from __future__ import annotations

from typing import Any, Dict, Sequence

MAGIC = b"FAKETRT1"
VERSIONS = {"8.6": "8.6.2.3", "10": "10.3.0.30", "11": "11.1.0.4"}

BUILDER_FLAGS = {
    "8.6": ["FP16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS",
            "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO",
            "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8"],
    "10": ["FP16", "BF16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32",
           "SPARSE_WEIGHTS", "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS",
           "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8",
           "ERROR_ON_TIMING_CACHE_MISS", "DISABLE_COMPILATION_CACHE", "WEIGHTLESS", "STRIP_PLAN",
           "REFIT_IDENTICAL", "WEIGHT_STREAMING", "INT4"],
    "11": ["DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "EDITABLE_TIMING_CACHE", "TF32",
           "SPARSE_WEIGHTS", "SAFETY_SCOPE", "DIRECT_IO", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME",
           "ERROR_ON_TIMING_CACHE_MISS", "DISABLE_COMPILATION_CACHE", "STRIP_PLAN", "REFIT_IDENTICAL",
           "WEIGHT_STREAMING", "REFIT_INDIVIDUAL", "STRICT_NANS", "MONITOR_MEMORY", "DISTRIBUTIVE_INDEPENDENCE"],
}
NETWORK_FLAGS = {"8.6": {"EXPLICIT_BATCH": 0}, "10": {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1},
                 "11": {"STRONGLY_TYPED": 1}}
#: Members removed per generation: (class, attribute) pairs the generation does not have.
ABSENT = {
    "8.6": {("Builder", "build_engine_with_config"), ("IExecutionContext", "set_optimization_profile_async_v2"),
            ("IBuilderConfig", "progress_monitor")},
    "10": {("Builder", "build_engine"), ("ICudaEngine", "num_bindings"), ("ICudaEngine", "get_binding_name"),
           ("ICudaEngine", "binding_is_input"), ("ICudaEngine", "max_batch_size"),
           ("IExecutionContext", "execute_async_v2"), ("IExecutionContext", "set_binding_shape")},
    "11": {("Builder", "build_engine"), ("Builder", "platform_has_fast_int8"), ("Builder", "platform_has_fast_fp16"),
           ("IBuilderConfig", "int8_calibrator"), ("IBuilderConfig", "set_calibration_profile"),
           ("ICudaEngine", "num_bindings"), ("ICudaEngine", "get_binding_name"), ("ICudaEngine", "binding_is_input"),
           ("ICudaEngine", "max_batch_size"), ("ICudaEngine", "has_implicit_batch_dimension"),
           ("IExecutionContext", "execute_async_v2"), ("IExecutionContext", "set_binding_shape")},
}


class Member(int):
    """An enum member: an int with a name (``int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)``)."""

    def __new__(cls, value: int, name: str) -> Member:
        obj = int.__new__(cls, value)
        obj.name = name
        return obj

    def __repr__(self) -> str:
        return f"<{self.name}: {int(self)}>"


def enum(name: str, members: Sequence[str] | Dict[str, int]) -> type:
    items = members.items() if isinstance(members, dict) else ((m, i) for i, m in enumerate(members))
    return type(name, (), {m: Member(v, m) for m, v in items})


class Strict:
    """Assigning an attribute the class does not define raises AttributeError, as on pybind objects."""

    def __setattr__(self, key: str, value: Any) -> None:
        if not key.startswith("_") and not hasattr(type(self), key):
            raise AttributeError(f"'tensorrt.{type(self).__name__}' object has no attribute '{key}'")
        object.__setattr__(self, key, value)
