"""``ptycho bench io``: the pread-backed stack and the suite's cases (correctness only; the
figures themselves are in benchmarks/RESULTS.md)."""

from __future__ import annotations

import json

import numpy as np

from engine.bench.io import NpyStack, write_stack
from engine.cli import main


def test_npy_stack_reads_only_the_rows_asked_for(tmp_path):
    rng = np.random.default_rng(0)
    base = rng.random((7, 4, 4)).astype(np.float32)
    path = tmp_path / "s.npy"
    write_stack(path, base, 3)
    full = np.load(path)
    assert full.shape == (21, 4, 4)
    stack = NpyStack(path)
    index = np.array([20, 3, 4, 5, 0, 4])
    np.testing.assert_array_equal(stack[index], full[index])
    np.testing.assert_array_equal(stack[2:9], full[2:9])
    np.testing.assert_array_equal(stack[11], full[11])
    sub = stack.subset(np.array([9, 1]))
    assert sub.shape == (2, 4, 4)
    np.testing.assert_array_equal(sub[np.arange(2)], full[[9, 1]])


def test_the_suite_runs_lazy_and_in_memory_alike(tmp_path):
    out = tmp_path / "io.json"
    assert main(["bench", "io", "--N", "32", "--base", "64", "--repeats", "1,2",
                 "--in-memory-max", "2", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    cases = {(c["mode"], c["repeats"]): c for c in result["cases"]}
    assert set(cases) == {("lazy", 1), ("memory", 1), ("lazy", 2), ("memory", 2)}
    for r in (1, 2):
        # one computation, two ways of reading: the same final error
        assert abs(cases["lazy", r]["final_error"] - cases["memory", r]["final_error"]) \
            <= 1e-6 * cases["memory", r]["final_error"]
        assert cases["lazy", r]["patterns"] == 64 * r
    assert set(result["summary"]["throughput_lazy_over_memory"]) == {"1", "2"}
