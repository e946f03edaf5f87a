#!/usr/bin/env bash
# The prepared device check of a lent GPU session (see benchmarks/README.md, "GPU runs").
#
# One pass, most important first, each step capped so that the whole fits one device call
# (BUDGET seconds, default 570):
#   1. the CUDA correctness tests (backend parity, solver frame, the trainer's CUDA graph),
#      and the iterative solvers on several GPUs (NCCL) where the machine has 2 or more;
#   2. throughput of the default network, lever by lever, with an eager profile;
#   3. the held-out goal run at 4,096 positions: defaults, without global mixing, and with
#      --augment symmetry;
#   4. a recipe sweep (GRID=benchmarks/grids/<file>.json) for whatever time is left.
# The second session (2026-11-26) ran this script as of commit 50e5dd4: the sweep of
# grids/quality-1024.json, then its best gridsize-2 case at 4,096 positions.
# Every suite rewrites its JSON as it goes, so a capped step keeps what it measured.
#
# Runs from the repository root with the image's python3 (torch, lightning, safetensors,
# numpy, scipy, matplotlib are there); the engine is used in place through PYTHONPATH.
# Results go to $OUT (the device tool's folder, at most 8 files) or benchmarks/results/gpu/.
set -uo pipefail
out=${OUT:-benchmarks/results/gpu}
budget=${BUDGET:-570}
device=${DEVICE:-cuda}  # DEVICE=cpu BUDGET=<s> N4096=<n>: a dry run of the script here
grid=${GRID:-}          # a pinn-sweep grid for the time left at the end (none by default)
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
step tests "$(cap 50)" "${pytest[@]}" tests/engine/physics/test_parity.py \
    tests/engine/iterative/test_frame.py
graphs=false
step graphs "$(cap 45)" "${pytest[@]}" tests/engine/network/test_graphs.py && graphs=true
echo "quality runs with cuda_graphs=$graphs"

# 1b. the workbench drives the GPU: a default training from the run panel (device auto,
# nothing edited) resolves to CUDA and the standard preset, and trains there (one epoch)
step workbench-gpu "$(cap 60)" python3 -c "
import importlib.util, sys, tempfile, torch
if importlib.util.find_spec('psygnal') is None:
    sys.exit(print('skipped: psygnal (the workbench model events) is not installed here'))
from ptycho_gui import Workbench
wb = Workbench(runs_root=tempfile.mkdtemp(), auto_preview=False)
wb.load('lines', n_positions=64, N=32)
req = wb.request('train')
print('workbench default training:', req.describe())
assert req.resolved_device.startswith('$device') and req.preset == ('standard' if '$device' != 'cpu' else 'quick')
rec = wb.start('train', epochs=1)
assert wb.wait(50) and rec.status == 'finished', rec.error
print('trained on', rec.request.resolved_device, 'peak CUDA memory',
      torch.cuda.max_memory_allocated() if torch.cuda.is_available() else 0)
"

# 1c. the iterative solvers on several GPUs (docs/iterative.md#several-devices): LSQ-ML at
# 4,096 positions on 1, 2 (and 4, 8 where present) ranks, NCCL, side by side; skipped
# cleanly on a machine with fewer than 2 GPUs
ngpu=$(python3 -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
if [[ "$device" == cuda* ]] && ((ngpu >= 2)); then
    counts=1,2
    ((ngpu >= 4)) && counts=$counts,4
    ((ngpu >= 8)) && counts=$counts,8
    step devices "$(cap 120)" "${ptycho[@]}" bench iterative --device cuda \
        --devices "$counts" --devices-backend torch --n 4096 --N 64 --epochs 8 \
        --batch-lsqml 512 --out "$out/iterative-devices.json"
else
    echo "== devices skipped: $ngpu GPU(s) on $device (the multi-device run needs 2)"
fi

# 2. throughput of the default network (width 32, 16×16 bottleneck): each lever alone, the
# channels-last + CUDA-graph pair and all together, the bf16-cast network for inference
# (`ptycho infer --precision bf16`: alone, graphed, graphed and channels-last), inference at
# the issue's --batch-size 1024, and the eager per-operator profile of gridsize 2 batch 64
step pinn "$(cap 130)" "${ptycho[@]}" bench pinn --device "$device" --sweep-levers \
    --steps 50 --warmup 5 --infer-batch 1024 --infer-batches 4 --profile g2b64 \
    --out "$out/pinn-levers.json"

# 3. the goal run: 4,096 positions, the held-out stripe, three trainings of a third of the
# time left each (at most 5 minutes; the second session's run had reached its validation
# floor after ~55 s): the defaults (global mixing on at N = 64), the same without global
# mixing, and the defaults with the symmetry augmentation. On the CPU (N = 64, 2,000 steps)
# global mixing raised held-out r by ~0.06; the augmentation helped the N = 32 proxy near
# convergence but slowed a short N = 64 run (benchmarks/RESULTS.md). Each run is also scored
# with the uniform window and the N/4 crop (reassembly only), and beside LSQ-ML on the same
# data for 1 and 5 epochs from flat and from the network's canvas (~5 s with their scoring).
# Beyond its training budget a run spends ~55 s on simulation, inference and evaluation.
left=$((budget - SECONDS))
train_s=$(((left - 180) / 3 < 300 ? (left - 180) / 3 : 300))
((train_s < 30)) && train_s=30
n4096=${N4096:-4096}
cat > "$out/grid-4096.json" <<JSON
{"base": {"N": 64, "n_positions": ${n4096}, "gridsize": 2, "batch_size": 64,
          "val_fraction": 0.2, "steps": 400000, "seconds": ${train_s},
          "cuda_graphs": ${graphs}, "stitch": [{"window": "uniform"}, {"crop": 16}],
          "refine": {"method": "lsqml", "epochs": [1, 5], "batch_size": 256}},
 "cases": [{"name": "${n4096}-defaults-${train_s}s"},
           {"name": "${n4096}-no-mixing-${train_s}s", "global_mixing": false},
           {"name": "${n4096}-symmetry-${train_s}s", "augment": "symmetry"}]}
JSON
step quality-4096 "$(cap $((3 * train_s + 180)))" "${ptycho[@]}" bench pinn-sweep \
    --device "$device" --grid "$out/grid-4096.json" --out "$out/quality-4096.json"

# 4. a recipe sweep for whatever time is left
if [[ -n "$grid" ]] && ((budget - SECONDS > 60)); then
    python3 -c "
import json, sys
grid = json.load(open(sys.argv[1]))
grid.setdefault('base', {})['cuda_graphs'] = sys.argv[2] == 'true'
json.dump(grid, open(sys.argv[3], 'w'), indent=1)" "$grid" "$graphs" "$out/grid.json"
    left=$((budget - SECONDS))
    step sweep "$(cap $left)" "${ptycho[@]}" bench pinn-sweep --device "$device" \
        --grid "$out/grid.json" --budget $((left - 50)) --out "$out/sweep.json"
fi
ls -l "$out"
