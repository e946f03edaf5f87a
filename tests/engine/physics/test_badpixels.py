"""Bad-pixel detection: each kind found, a real peak left alone, one streamed pass, the
provenance; and ``ptycho prepare`` on the command line."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine import api
from engine.cli import main
from engine.physics.badpixels import BadPixelOptions, find_bad_pixels, mask_bad_pixels
from engine.simulation.simulate import SimulationConfig, simulate
from tests.engine.lazy_stack import CountingStack


@pytest.fixture(scope="module")
def bright():
    """A clean bright data set with a sharp direct-beam peak: nothing here is bad."""
    return simulate(SimulationConfig(object="lines", N=32, n_positions=25, step=5,
                                     nphotons=1e9, seed=0))


def test_a_clean_bright_pattern_has_no_bad_pixels(bright):
    # the 3 x 3 direct beam stands out from its neighbours' median; it is not an outlier
    report = find_bad_pixels(bright.diffraction)
    assert report.counts == {"saturated": 0, "hot": 0, "cold": 0, "bad": 0}


def test_each_kind_is_found_and_counted(bright):
    D = bright.diffraction.copy()
    D[:, 2, 3] = 0.3 * D.max()  # hot, in the dark outskirts
    D[:, 20, 21] = np.sqrt(D[:, 20, 21] ** 2 + 0.2 * D.max() ** 2)  # hot, beside the beam
    D[:, 14, 12] = 0.0  # dead where the pattern is bright
    D[:, 25, 8] = 1.2 * D.max()  # stuck at the (new) maximum count
    report = find_bad_pixels(D)
    assert report.hot[2, 3] and report.hot[20, 21]
    assert report.cold[14, 12]
    assert report.saturated[25, 8]
    assert report.counts == {"saturated": 1, "hot": 2, "cold": 1, "bad": 4}
    # a known saturation count catches a pixel that reached it in one frame only
    D2 = bright.diffraction.copy()
    D2[7, 16, 16] = np.sqrt(5e8)
    known = find_bad_pixels(D2, BadPixelOptions(saturation=5e8))
    assert known.saturated[16, 16] and known.counts["saturated"] == 1
    assert "1 saturated (at 5e+08 counts)" in known.summary()


def test_one_streamed_pass_gives_the_in_memory_answer(bright):
    D = bright.diffraction.copy()
    D[:, 2, 3] = 0.3 * D.max()
    stack = CountingStack(D)
    lazy = find_bad_pixels(stack, BadPixelOptions(batch=4))
    mem = find_bad_pixels(D)
    assert stack.largest_read == 4 and sum(stack.reads) == D.shape[0]
    np.testing.assert_array_equal(lazy.mask, mem.mask)
    assert lazy.counts == mem.counts


def test_masking_merges_into_the_mask_and_records_provenance(bright):
    D = bright.diffraction.copy()
    D[:, 2, 3] = 0.3 * D.max()
    mask = np.ones((32, 32), bool)
    mask[0, 0] = False
    ds = dataclasses.replace(bright.with_diffraction(D), pixel_mask=mask)
    out, report = mask_bad_pixels(ds)
    assert not out.pixel_mask[0, 0] and not out.pixel_mask[2, 3]
    assert int((~out.pixel_mask).sum()) == 2
    step = out.metadata["provenance"][-1]
    assert step["step"] == "bad_pixels"
    assert step["result"]["hot"] == 1 and step["result"]["newly_masked"] == 1
    assert step["parameters"]["threshold"] == 8.0


def test_ptycho_prepare_writes_a_prepared_dataset(bright, tmp_path, capsys):
    D = bright.diffraction.copy()
    D[:, 2, 3] = 0.3 * D.max()
    src = api.save_dataset(tmp_path / "raw.npz", bright.with_diffraction(D))
    np.save(tmp_path / "dark.npy", np.full((32, 32), 1.0))
    out = tmp_path / "prepared.npz"
    assert main(["prepare", str(src), "--out", str(out), "--bad-pixels", "--centre", "com",
                 "--bin", "2", "--dark", str(tmp_path / "dark.npy")]) == 0
    printed = capsys.readouterr().out
    assert "1 bad pixel(s) masked" in printed and "wrote" in printed
    ds = api.load_dataset(out)
    assert ds.N == 16
    assert [s["step"] for s in ds.metadata["provenance"]] == [
        "bad_pixels", "dark", "clip", "centre", "bin", "probe"]
    assert not ds.pixel_mask[1, 1]  # the hot pixel's bin
    assert main(["prepare", str(src), "--out", str(out), "--centre", "1,2,3"]) == 2
    assert "--centre" in capsys.readouterr().err
