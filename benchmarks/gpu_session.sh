#!/usr/bin/env bash
# The prepared device check of a lent GPU session (see benchmarks/README.md, "GPU runs").
#
#   stage "timings" (about 4 min on an H100): CUDA correctness tests, then the physics,
#       iterative (beside pty-chi when .whl/ carries it) and pinn throughput suites,
#       the pinn GPU levers one at a time;
#   stage "quality" (at most 9 min): the pinn quality runs of issue 3 (1,024 positions at
#       the upstream step budget, then 4,096 positions with a held-out stripe).
#
# Runs from the repository root with the image's python3 (torch, lightning, safetensors,
# numpy, scipy, matplotlib are there); the engine is used in place through PYTHONPATH.
# Results go to $OUT (the device tool's folder) or benchmarks/results/gpu/.
set -uo pipefail
stage=${1:-timings}
out=${OUT:-benchmarks/results/gpu}
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
ptycho() { python3 -m engine.cli "$@"; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$out/gpu.txt"
date -u +%FT%TZ | tee -a "$out/gpu.txt"
case "$stage" in
timings)
    # the CUDA paths of the backends and solvers: parity with the float64 reference
    PTYCHO_TEST_DEVICE=cuda timeout 120 python3 -m pytest -q -x -p no:cacheprovider \
        tests/engine/test_parity.py tests/engine/iterative/test_frame.py 2>&1 | tail -3
    timeout 90 ptycho bench physics --device cuda --skip-numpy --out "$out/physics-cuda.json"
    timeout 150 ptycho bench iterative --device cuda --n 4096 --backends torch --epochs 10 \
        --batch-lsqml 256 --batch-pie 64 --out "$out/iterative-cuda.json"
    timeout 200 ptycho bench pinn --device cuda --sweep-levers --out "$out/pinn-cuda.json"
    ;;
quality)
    # the equal-budget comparison with upstream (4,000 steps, 1,024 positions, gridsize 1
    # batch 16 and gridsize 2 batch 64), then the 4,096-position held-out goal
    timeout 240 ptycho bench pinn --device cuda --skip-throughput --quality --quality-n 1024 \
        --quality-steps 4000 --out "$out/pinn-quality-1024-cuda.json"
    timeout 300 ptycho bench pinn --device cuda --skip-throughput --quality --quality-n 4096 \
        --quality-gridsizes 2 --quality-batch 64 --quality-epochs 30 \
        --out "$out/pinn-quality-4096-cuda.json"
    ;;
*) echo "stage: expected timings or quality, got $stage" >&2; exit 2 ;;
esac
ls -l "$out"
