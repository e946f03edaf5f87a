"""write_debug_dump: the five files of ``ptycho infer --debug-dump``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import InputError
from engine.evaluation.debug_dump import write_debug_dump
from engine.physics.stitching import stitch

FILES = ["canvas.json", "offsets.json", "pred_patches_amp_grid.png",
         "pred_patches_amp_grid_normalized.png", "stats.json"]


def _groups(b: int, C: int, N: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    group = np.stack([np.linspace(20, 40, b), np.linspace(30, 10, b)], axis=1)
    g = int(round(C ** 0.5))
    local = np.array([[(i // g - (g - 1) / 2) * 3.0, (i % g - (g - 1) / 2) * 2.0]
                      for i in range(C)])
    local = np.broadcast_to(local, (b, C, 2)).copy()
    amp = rng.uniform(0.5, 1.5, size=(b, C, N, N)).astype(np.float32)
    canvas = stitch(amp.astype(np.complex64), group[:, None, :] + local)
    return amp, group, local, canvas


def test_dump_writes_exactly_the_listed_files(tmp_path):
    amp, group, local, canvas = _groups(b=5, C=4)
    paths = write_debug_dump(tmp_path / "dbg", amp, group, local, canvas)
    assert sorted(p.name for p in paths) == FILES
    assert sorted(p.name for p in (tmp_path / "dbg").iterdir()) == FILES
    for name in FILES[2:4]:
        assert (tmp_path / "dbg" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    info = json.loads((tmp_path / "dbg" / "canvas.json").read_text())
    centres = (group[:, None, :] + local).reshape(-1, 2)
    d = np.abs(centres - centres.mean(axis=0))
    assert info["patch_size"] == 16 and info["n_patch_slots"] == 20
    assert info["n_groups"] == 5 and info["channels"] == 4
    assert info["canvas_size"] == list(canvas.canvas.shape)
    assert info["max_abs_dx"] == pytest.approx(d[:, 1].max())
    assert info["max_abs_dy"] == pytest.approx(d[:, 0].max())
    assert info["max_abs_local_dy"] == pytest.approx(1.5) and info["max_abs_local_dx"] == 1.0

    off = json.loads((tmp_path / "dbg" / "offsets.json").read_text())
    assert off["count"] == 20 and len(off["first"]) == 16
    assert off["first"][1] == {"dy": centres[1, 0], "dx": centres[1, 1]}
    assert off["mean"]["dy"] == pytest.approx(30.0) and off["mean"]["dx"] == pytest.approx(20.0)
    assert off["std"]["dx"] == pytest.approx(centres[:, 1].std())
    radial = np.sqrt(np.mean(np.sum((centres - centres.mean(axis=0)) ** 2, axis=1)))
    assert off["centred_std"] == pytest.approx(radial)
    assert off["local"]["mean"] == {"dy": 0.0, "dx": 0.0}

    stats = json.loads((tmp_path / "dbg" / "stats.json").read_text())
    assert stats["patches"]["mean"] == pytest.approx(float(amp.mean()), rel=1e-5)
    assert stats["patches"]["n_patches"] == 20
    assert stats["patches"]["var_across_group"] is not None
    assert stats["canvas"]["min"] >= 0.5 and stats["canvas"]["max"] <= 1.5


def test_gridsize_one_dump_and_bad_shapes(tmp_path):
    amp, group, local, canvas = _groups(b=3, C=1)
    write_debug_dump(tmp_path, amp, group, local, canvas)
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["patches"]["var_across_group"] is None  # undefined for C = 1, not 0
    assert json.loads((tmp_path / "offsets.json").read_text())["count"] == 3
    with pytest.raises(InputError, match="local_offsets"):
        write_debug_dump(tmp_path, amp, group, local[:2], canvas)
    with pytest.raises(InputError, match="group_offsets"):
        write_debug_dump(tmp_path, amp, group[:, :1], local, canvas)


def test_dump_pngs_are_labelled_figures_not_copies_of_the_analysis_grids(tmp_path):
    from matplotlib.image import imread

    from engine.physics.stats import write_patch_grid

    amp, group, local, canvas = _groups(b=5, C=4)
    write_debug_dump(tmp_path / "dbg", amp, group, local, canvas)
    raw = write_patch_grid(tmp_path / "raw.png", amp, False)  # what analysis/ holds
    dump = tmp_path / "dbg" / "pred_patches_amp_grid.png"
    assert dump.read_bytes() != raw.read_bytes()
    img = imread(dump)
    # a figure with margins for title, labels and colour bar, not the bare mosaic
    assert img.shape[1] > img.shape[0] * 0.8 and img.shape[1] >= 600
    bare = imread(raw)
    assert img.shape != bare.shape
    # the colour bar: a column of grey levels running from black to white
    assert img[..., :3].min() < 0.05 and img[..., :3].max() > 0.95
