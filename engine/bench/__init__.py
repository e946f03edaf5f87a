"""Benchmark suites run by ``ptycho bench SUITE``; each writes one JSON result file.

A suite is a module of this package with ``add_arguments(parser)`` and
``run(args, emit) -> dict``; register it in ``SUITES``. Results are recorded under
``benchmarks/results/``; tests check correctness, never wall-clock time.
"""

from __future__ import annotations

SUITES = {
    "physics": "engine.bench.physics",
    "iterative": "engine.bench.iterative",
    "pinn": "engine.bench.pinn",
    "pinn-sweep": "engine.bench.pinn_sweep",
    "gui": "engine.bench.gui",
    "io": "engine.bench.io",
}
