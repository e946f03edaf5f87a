"""``ptycho bench io``: the tiled stack, the sampled rows and the suite's cases over CXI files
(correctness only; the figures themselves are in benchmarks/RESULTS.md)."""

from __future__ import annotations

import json

import numpy as np

from engine import api
from engine.bench.io import TiledStack, sampled_rows, write_tiled_cxi
from engine.cli import main
from engine.geometry import Geometry
from engine.simulation.simulate import SimulationConfig, simulate


def test_a_tiled_cxi_file_reads_back_lazily_as_the_scan_repeated(tmp_path):
    ds = simulate(SimulationConfig(n_positions=9, N=16, step=3, seed=1))
    g = Geometry(wavelength=1.55e-10, distance=3.0, detector_pixel=(75e-6, 75e-6))
    path = tmp_path / "t.cxi"
    write_tiled_cxi(path, ds, g, 3)
    back = api.load_dataset(path, lazy=True, bad_pixels=False)
    assert back.n == 27 and type(back.diffraction).__name__ == "H5Stack"
    rows = np.array([0, 10, 26, 13])
    np.testing.assert_allclose(back.diffraction[rows], ds.diffraction[rows % 9], rtol=1e-6)
    # the positions repeat with the patterns (to the placement's offset)
    d = back.positions - np.tile(ds.positions, (3, 1))
    np.testing.assert_allclose(d, d[0] + 0 * d, atol=1e-6)
    t = TiledStack(ds.diffraction, 3).subset(np.array([26, 1]))
    np.testing.assert_array_equal(t[np.arange(2)], ds.diffraction[[8, 1]])


def test_sampled_rows_cover_the_whole_file():
    rows = sampled_rows(1000, 4, 10)
    assert rows.size == 40 and rows[0] == 0 and rows[-1] == 999
    assert np.all(np.diff(rows.reshape(4, 10), axis=1) == 1)


def test_the_suite_runs_lazy_in_memory_and_sampled_and_deletes_its_files(tmp_path):
    out = tmp_path / "io.json"
    work = tmp_path / "work"
    # --large-gib 2**-11 (512 KiB): a file of 4 repeats of 32 patterns of 32 x 32
    assert main(["bench", "io", "--N", "32", "--base", "32", "--repeats", "1,2",
                 "--in-memory-max", "2", "--large-gib", "0.00048828125", "--sample-batches", "2",
                 "--batch-size", "16", "--dir", str(work), "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    cases = {(c["mode"], c["repeats"]): c for c in result["cases"]}
    assert set(cases) == {("lazy", 1), ("memory", 1), ("lazy", 2), ("memory", 2),
                          ("lazy-sampled", 4)}
    for r in (1, 2):
        # one computation, two ways of reading: the same final error
        assert abs(cases["lazy", r]["final_error"] - cases["memory", r]["final_error"]) \
            <= 1e-6 * cases["memory", r]["final_error"]
        assert cases["lazy", r]["patterns"] == 32 * r
        assert cases["lazy", r]["lazy"] == "H5Stack"
        assert cases["memory", r]["lazy"] == "ndarray"
    sampled = cases["lazy-sampled", 4]
    assert sampled["patterns"] == 32 and sampled["file_mib"] >= 0.5
    assert set(result["summary"]["throughput_lazy_over_memory"]) == {"1", "2"}
    assert list(work.iterdir()) == []
