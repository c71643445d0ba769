"""TensorRT engine building and checking, for the device that runs the model (never imports torch).

Public API::

    from fer_edge.runtime.tensorrt import BuildOptions, build_engine, check_engine, trtexec_command
    result = build_engine("model.int8.onnx", "model.engine", precision="best", batch=[1, 8, 32])
    print(trtexec_command("model.int8.onnx", "model.engine", trt_version="8.6"))   # no TensorRT needed
    manifest = check_engine("model.engine")          # refuses another TensorRT version or GPU

``import tensorrt`` happens only inside the functions, so this package imports on any machine.
"""
from .build import BuildResult, build_engine, trtexec_command
from .calib_cache import check_calibration_cache, make_calibrator
from .capabilities import Capabilities, calibration_cache_version, import_tensorrt, version_tuple
from .onnx_model import OnnxModelInfo, read_onnx_model
from .plan import BuildOptions, BuildPlan, make_plan, parse_batch
from .progress import make_progress_monitor
from .sidecar import REBUILD, DeviceInfo, check_engine, detect_device, engine_manifest
from .trtexec import format_command, trtexec_argv

__all__ = [
    "BuildOptions", "BuildPlan", "BuildResult", "Capabilities", "DeviceInfo", "OnnxModelInfo", "REBUILD",
    "build_engine", "calibration_cache_version", "check_calibration_cache", "check_engine", "detect_device",
    "engine_manifest", "format_command", "import_tensorrt", "make_calibrator", "make_plan", "make_progress_monitor",
    "parse_batch",
    "read_onnx_model", "trtexec_argv", "trtexec_command", "version_tuple",
]
