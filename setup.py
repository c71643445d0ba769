"""fer-edge: facial-expression recognition from workstation to embedded GPU.

The stage folders (data/, train/, export/, calibration/, runtime/) live at the top of the repository
so a newcomer finds them by name, but they install under one import namespace, ``fer_edge``, so
nothing generic (a package called ``train`` or ``runtime``) lands in site-packages.
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
STAGES = ("train", "export", "calibration", "runtime", "data")


def _version() -> str:
    for line in (HERE / "fer_edge" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    raise RuntimeError("fer_edge/__init__.py has no __version__")


packages = ["fer_edge"] + [f"fer_edge.{p}" for p in find_packages(where="fer_edge")]
package_dir = {"fer_edge": "fer_edge", "fer_edge.configs": "configs"}
packages.append("fer_edge.configs")
for stage in STAGES:
    package_dir[f"fer_edge.{stage}"] = stage
    packages.append(f"fer_edge.{stage}")
    packages += [f"fer_edge.{stage}.{p}" for p in find_packages(where=stage)]

RUNTIME = ["numpy>=1.24", "opencv-python-headless>=4.8,<5", "pyyaml>=6", "onnxruntime>=1.17"]
TRAIN = ["torch>=2.2", "onnx>=1.15", "onnxscript", "onnxslim", "tqdm", "matplotlib"]
TEST = ["pytest>=7", "hypothesis>=6", "ruff"]

setup(
    name="fer-edge",
    version=_version(),
    description="Facial-expression recognition from workstation to embedded GPU: "
    "adversarial domain adaptation, ONNX export, INT8 calibration, TensorRT/ONNX Runtime runtime.",
    long_description=(HERE / "README.md").read_text() if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=packages,
    package_dir=package_dir,
    package_data={"fer_edge.configs": ["*.yaml"]},
    include_package_data=True,
    install_requires=["numpy>=1.24", "pyyaml>=6"],
    extras_require={
        "runtime": RUNTIME,
        "train": TRAIN + RUNTIME,
        "jetson": ["pycuda"] + RUNTIME,
        "test": TEST,
        "all": sorted(set(RUNTIME + TRAIN)),
    },
    entry_points={"console_scripts": ["fer-edge=fer_edge.cli:main"]},
)
