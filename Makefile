# Two entry points: `make run` and `make test`. Everything they need is installed here.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXTRAS ?= dev,gui,interop

.PHONY: setup run test lint bench bench-deps clean xvfb screenshots

setup: $(STAMP) xvfb

# The GUI tests and screenshots need an X server: Xvfb where apt-get can install it (CI, a
# fresh container); elsewhere the GUI tests fail and say why (PTYCHO_SKIP_GUI=1 skips them).
xvfb:
	@if ! command -v Xvfb >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	    SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	    ($$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq xvfb xauth libxcb-icccm4 \
	        libxcb-keysyms1 libxkbcommon-x11-0 libxcb-cursor0 libgl1 libegl1 libfontconfig1 \
	        libdbus-1-3 >/dev/null) \
	    || echo "Xvfb could not be installed: the GUI tests will fail (PTYCHO_SKIP_GUI=1 skips them)"; \
	fi

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

# napari with the workbench docked and the lines sample when there is a display; the
# headless demo otherwise
run: setup
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then $(PY) -m ptycho_gui lines; \
	else $(VENV)/bin/ptycho demo --out runs/demo; fi

# Every suite once, the GUI's included (it fails, not skips, without an X server or napari:
# PTYCHO_SKIP_GUI=1 opts out on a machine without a display); the notebooks run once, inside
# tests/test_notebooks.py, at their small sizes (PTYCHO_FAST=1: the same code path), with
# no per-cell time limit a loaded machine could hit. Nothing is written into the checkout
# (no caches; run directories go to temporary folders).
test: setup
	$(PY) -m ruff check --no-cache engine ptycho_gui plugins tests benchmarks
	$(PY) -m pytest -q -p no:cacheprovider tests

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

# The README's pictures of the workbench (docs/images/); a virtual display when there is none
screenshots: setup
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then $(PY) -m ptycho_gui.screenshots docs/images; \
	else xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) -m ptycho_gui.screenshots docs/images; fi
# live runs: a training mid-run, two runs compared, the canvas converging (GIF)
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ]; then $(PY) -m ptycho_gui.run_screenshots docs/images; \
	else xvfb-run -a -s "-screen 0 1600x1050x24" $(PY) -m ptycho_gui.run_screenshots docs/images; fi
