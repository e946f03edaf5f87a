#!/usr/bin/env bash
# The prepared device check of a lent GPU session (see benchmarks/README.md, "GPU runs").
#
# One pass, most important first, each step capped so that the whole fits one device call
# (BUDGET seconds, default 570): the CUDA correctness tests, the iterative solvers beside
# pty-chi (issue 4's GPU goal), the network throughput levers, the network at upstream's
# step budget (1,024 positions), the physics suite, and last, for whatever time is left, a
# time-limited network run at 4,096 positions with a held-out stripe.
# Every suite rewrites its JSON as it goes, so a capped step keeps what it measured.
#
# Runs from the repository root with the image's python3 (torch, lightning, safetensors,
# numpy, scipy, matplotlib are there); the engine is used in place through PYTHONPATH.
# Results go to $OUT (the device tool's folder, at most 8 files) or benchmarks/results/gpu/.
set -uo pipefail
out=${OUT:-benchmarks/results/gpu}
budget=${BUDGET:-570}
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
date -u +%FT%TZ
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())"

# cap SECONDS: the smaller of SECONDS and what is left of the budget (at least 1)
cap() { local left=$((budget - SECONDS)); ((left < 1)) && left=1; echo $(($1 < left ? $1 : left)); }
step() {  # step NAME SECONDS COMMAND...
    local name=$1 secs=$2
    shift 2
    echo "== $name (cap $secs s, at $SECONDS s)"
    timeout "$secs" "$@"
    local rc=$?
    echo "== $name rc $rc at $SECONDS s"
    return $rc
}
ptycho=(python3 -m engine.cli)

# the CUDA paths of the backends and solvers: parity with the float64 NumPy reference
step tests "$(cap 60)" env PTYCHO_TEST_DEVICE=cuda python3 -m pytest -q -p no:cacheprovider \
    tests/engine/test_parity.py tests/engine/iterative/test_frame.py
# ptycho train --cuda-graphs against eager training; the quality runs use it if it passes
graphs=()
step graphs "$(cap 60)" env PTYCHO_TEST_DEVICE=cuda python3 -m pytest -q -p no:cacheprovider \
    tests/engine/pinn/test_graphs.py && graphs=(--cuda-graphs)
echo "quality runs with: ${graphs[*]:-eager steps}"
# issue 4: ours against pty-chi on one problem, 4,096 positions (pty-chi's own figures are
# LSQML batch 256 and ePIE batch 64 on an H100)
step iterative "$(cap 100)" "${ptycho[@]}" bench iterative --device cuda \
    --n 4096 --backends torch --epochs 10 --repeat 2 --batch-lsqml 256 --batch-pie 64 \
    --out "$out/iterative-cuda.json"
# issue 3: throughput of each lever alone and all together, plus stitching 4,096 patches
step pinn "$(cap 110)" "${ptycho[@]}" bench pinn --device cuda --sweep-levers \
    --steps 50 --warmup 5 --infer-batch 256 --infer-batches 8 --profile g2b64 \
    --out "$out/pinn-cuda.json"
# issue 3: upstream's equal budget (4,000 steps, 1,024 positions; g2 batch 64, g1 batch 16),
# each case also capped at 60 s of training
step quality-1024 "$(cap 170)" "${ptycho[@]}" bench pinn --device cuda \
    --skip-throughput --quality --quality-n 1024 --quality-gridsizes 2,1 \
    --quality-batch 64,16 --quality-steps 4000 --quality-seconds 60 "${graphs[@]}" \
    --out "$out/pinn-quality-1024-cuda.json"
step physics "$(cap 40)" "${ptycho[@]}" bench physics --device cuda --skip-numpy \
    --out "$out/physics-cuda.json"
# issue 3: 4,096 positions with the held-out stripe for the time left; beyond its training
# budget the run spends ~30 s (simulation, inference, evaluation) and up to one epoch
left=$((budget - SECONDS))
step quality-4096 "$(cap $((left > 30 ? left : 30)))" \
    "${ptycho[@]}" bench pinn --device cuda --skip-throughput --quality --quality-n 4096 \
    --quality-gridsizes 2 --quality-batch 64 --quality-epochs 400 \
    --quality-seconds $((left > 80 ? left - 55 : 25)) "${graphs[@]}" \
    --out "$out/pinn-quality-4096-cuda.json"
ls -l "$out"
