#!/usr/bin/env bash
# The prepared device check of a lent GPU session (see benchmarks/README.md, "GPU runs").
#
# One pass, most important first, each step capped so that the whole fits one device call
# (BUDGET seconds, default 570):
#   1. the CUDA correctness tests (backend parity, solver frame, the trainer's CUDA graph);
#   2. network throughput of the recipe candidates (CUDA graphs), and a profile;
#   3. the recipe sweep at upstream's budget: benchmarks/grids/quality-1024.json
#      (4,000 steps, 1,024 positions, trained on every position);
#   4. the best gridsize-2 case of that sweep at 4,096 positions with the held-out stripe,
#      for the time left (the goal allows 5 minutes).
# Every suite rewrites its JSON as it goes, so a capped step keeps what it measured.
# (The first session's iterative-beside-pty-chi step is `ptycho bench iterative --device
# cuda --n 4096 ...`; its results are recorded and it is not repeated here.)
#
# Runs from the repository root with the image's python3 (torch, lightning, safetensors,
# numpy, scipy, matplotlib are there); the engine is used in place through PYTHONPATH.
# Results go to $OUT (the device tool's folder, at most 8 files) or benchmarks/results/gpu/.
set -uo pipefail
out=${OUT:-benchmarks/results/gpu}
budget=${BUDGET:-570}
device=${DEVICE:-cuda}  # DEVICE=cpu GRID=<small grid> BUDGET=<s>: a dry run of the script
grid=${GRID:-benchmarks/grids/quality-1024.json}
mkdir -p "$out"
exec > >(tee -a "$out/log.txt") 2>&1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || true
date -u +%FT%TZ
python3 -c "import torch; print('torch', torch.__version__, torch.cuda.is_available()
                                and torch.cuda.get_device_name())"

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
pytest=(env PTYCHO_TEST_DEVICE=cuda python3 -m pytest -q -p no:cacheprovider -x)

# 1. correctness on CUDA; the quality runs use CUDA graphs only if the trainer's test passes
step tests "$(cap 50)" "${pytest[@]}" tests/engine/test_parity.py \
    tests/engine/iterative/test_frame.py
graphs=false
step graphs "$(cap 45)" "${pytest[@]}" tests/engine/pinn/test_graphs.py && graphs=true
echo "quality runs with cuda_graphs=$graphs"

# 2. throughput: the candidate networks with the CUDA-graph lever (issue 3's cases), and
# the per-operator profile of gridsize 2 batch 64
step pinn "$(cap 70)" "${ptycho[@]}" bench pinn --device "$device" --cuda-graphs \
    --base-channels 32 --bottleneck 16 --steps 50 --warmup 5 --infer-batch 256 \
    --infer-batches 8 --profile g2b64 --out "$out/pinn-w32-bn16.json"
step pinn16 "$(cap 40)" "${ptycho[@]}" bench pinn --device "$device" --cuda-graphs \
    --base-channels 16 --bottleneck 16 --steps 50 --warmup 5 --infer-batch 256 \
    --infer-batches 4 --out "$out/pinn-w16-bn16.json"

# 3. the recipe sweep at upstream's budget (stops starting cases at its --budget)
python3 - "$grid" "$graphs" "$out/grid-1024.json" <<'EOF'
import json, sys
grid = json.load(open(sys.argv[1]))
grid["base"]["cuda_graphs"] = sys.argv[2] == "true"
json.dump(grid, open(sys.argv[3], "w"), indent=1)
EOF
left=$((budget - SECONDS))
sweep_cap=$((left - 190 > 60 ? left - 190 : 60))
step sweep "$(cap $sweep_cap)" "${ptycho[@]}" bench pinn-sweep --device "$device" \
    --grid "$out/grid-1024.json" --budget $((sweep_cap - 45)) --out "$out/sweep-1024.json"

# 4. the sweep's best gridsize-2 case at 4,096 positions, held-out stripe, time left
# (beyond its training budget a run spends ~30 s on simulation, inference, evaluation)
left=$((budget - SECONDS))
python3 - "$out/sweep-1024.json" "$graphs" "$((left > 90 ? left - 60 : 30))" \
    "$out/grid-4096.json" "${N4096:-4096}" <<'EOF'
import json, sys
try:
    cases = json.load(open(sys.argv[1]))["cases"]
except (OSError, ValueError, KeyError):
    cases = []
scored = [c for c in cases if "whole" in c and c["case"].get("gridsize") == 2]
best = max(scored, key=lambda c: c["whole"]["amplitude_pearson_r"])["case"] if scored else \
    {"name": "g2-w32-bn16", "gridsize": 2, "batch_size": 64, "base_channels": 32,
     "bottleneck": 16, "lr": 0.001}
case = {k: v for k, v in best.items() if k not in ("steps", "seconds", "val_fraction")}
case.update(name=f"{sys.argv[5]}-{best['name']}", n_positions=int(sys.argv[5]), val_fraction=0.2,
            steps=400000, seconds=float(sys.argv[3]), cuda_graphs=sys.argv[2] == "true")
print("4096-position run:", case)
json.dump({"cases": [case]}, open(sys.argv[4], "w"), indent=1)
EOF
step quality-4096 "$(cap $left)" "${ptycho[@]}" bench pinn-sweep --device "$device" \
    --grid "$out/grid-4096.json" --out "$out/quality-4096.json"
ls -l "$out"
