# Two entry points: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= dev

.PHONY: setup run test lint bench bench-deps clean

setup: $(STAMP)

# A torch already importable by the system Python is reused (GPU machines); otherwise the
# pinned CPU wheel, since an unpinned torch pulls a multi-GB CUDA build.
$(STAMP): pyproject.toml Makefile
	@if $(PYTHON) -c "import torch" 2>/dev/null; then \
	    $(PYTHON) -m venv --system-site-packages $(VENV); \
	else \
	    $(PYTHON) -m venv $(VENV) && $(PY) -m pip install -q torch==2.13.0; \
	fi
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	@touch $(STAMP)

run: setup
	$(VENV)/bin/ptycho demo --out runs/demo

test: setup
	$(PY) -m ruff check engine ptycho_gui plugins tests benchmarks
	$(PY) -m pytest -q tests
# the notebooks at their small sizes (PTYCHO_FAST=1: the same code path), opening no window
	PTYCHO_FAST=1 PTYCHO_NO_VIEWER=1 $(PY) -m pytest -q --nbmake notebooks

lint: setup
	$(PY) -m ruff check .

bench: setup
	$(VENV)/bin/ptycho bench physics --out benchmarks/results/physics-$$(hostname).json
	$(VENV)/bin/ptycho bench pinn --out benchmarks/results/pinn-$$(hostname).json
	$(VENV)/bin/ptycho bench iterative --out benchmarks/results/iterative-$$(hostname).json

# pty-chi for the side-by-side iterative benchmark. --no-deps: its own requirements pull a
# multi-GB CUDA torch; engine/bench/iterative.py registers the torchvision op schemas the CPU
# torch wheel lacks before importing it.
bench-deps: setup
	$(PY) -m pip install -q --no-deps ptychi==2.2.0 torchvision==0.29.1
	$(PY) -m pip install -q h5py pandas pydantic scikit-image scikit-learn tqdm

clean:
	rm -rf $(VENV) runs .pytest_cache
