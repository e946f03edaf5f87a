"""Statistics (docs/conventions.md#statistics) and comparison (docs/conventions.md#comparison)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.errors import InputError
from engine.evaluation.compare import compare_figure, compare_stats, load_stats
from engine.physics.grouping import GroupingConfig, make_groups
from engine.physics.stats import StatsLog, canvas_statistics, patch_statistics, summarise
from engine.physics.stitching import stitch
from engine.physics.workflows import stats_dataset


def test_definitions_on_known_arrays():
    a = np.zeros((2, 1, 4, 4))
    a[0, 0, :, :2] = 2.0  # one patch half 0 half 2; one flat zero patch
    s = patch_statistics(a)
    assert s["mean"] == pytest.approx(0.5)
    assert s["std"] == pytest.approx(np.std(a))
    assert s["var_zero_mean"] == pytest.approx(0.5)  # (1² over 16 px) / 2 patches
    assert s["var_across_group"] is None and s["n_patches"] == 2


def test_var_across_group_detects_misalignment(small_ds):
    groups = make_groups(small_ds.positions, GroupingConfig(gridsize=2, n_groups=30, seed=0))
    amp = np.abs(small_ds.patches[groups.indices])
    aligned = patch_statistics(amp, groups.local_offsets)["var_across_group"]
    swapped = patch_statistics(amp[:, ::-1], groups.local_offsets)["var_across_group"]
    assert aligned is not None and swapped is not None
    assert aligned < 0.05 * swapped  # true patches agree where they overlap


def test_collapsed_patches_read_zero():
    flat = np.full((3, 4, 16, 16), 0.7)
    offsets = np.random.default_rng(0).uniform(-3, 3, (3, 4, 2))
    s = patch_statistics(flat, offsets)
    assert s["var_zero_mean"] == pytest.approx(0, abs=1e-12)
    assert s["var_across_group"] == pytest.approx(0, abs=1e-10)


def test_canvas_statistics_ignore_uncovered(small_ds):
    c = stitch(small_ds.patches, small_ds.positions)
    s = canvas_statistics(c)
    assert 0 < s["coverage"] < 1
    amp = np.abs(c.canvas[c.coverage])
    assert s["mean"] == pytest.approx(amp.mean()) and s["max"] == pytest.approx(amp.max())


def test_stats_dataset_records_and_files(tmp_path, small_ds):
    log = stats_dataset(small_ds, grouping=GroupingConfig(gridsize=2, n_groups=40, seed=0),
                        batch_size=16, limit=2)
    batches = [r["batch"] for r in log.records]
    assert batches == [0, 1, "all"]
    whole = log.records[-1]
    assert whole["n_patches"] == 160 and "canvas" in whole
    for key in ("phase", "batch", "gridsize", "C", "backend", "device", "intensity_scale",
                "mean", "std", "var_zero_mean", "var_across_group", "n_patches"):
        assert key in whole
    # the pooled "all" record equals statistics over every group at once
    groups = make_groups(small_ds.positions, GroupingConfig(gridsize=2, n_groups=40, seed=0))
    direct = patch_statistics(np.abs(small_ds.patches[groups.indices]), groups.local_offsets)
    for key in ("mean", "std", "var_zero_mean"):
        assert whole[key] == pytest.approx(direct[key], rel=1e-9)
    paths = log.write(tmp_path)
    names = sorted(p.name for p in paths)
    assert names == ["patches_truth_normalized.png", "patches_truth_raw.png", "stats_truth.json"]
    assert json.loads((tmp_path / "stats_truth.json").read_text())[0]["C"] == 4


def test_gridsize_one_statistics_are_meaningful(small_ds):
    log = stats_dataset(small_ds, grouping=GroupingConfig(gridsize=1))
    whole = log.records[-1]
    assert whole["var_across_group"] is None
    assert whole["var_zero_mean"] > 1e-3 and whole["canvas"]["coverage"] > 0.5


def test_statslog_limit():
    log = StatsLog("train", gridsize=1, backend="numpy", device="cpu", limit=1)
    a = np.ones((2, 1, 8, 8))
    assert log.log(0, a) is not None and log.log(1, a) is None
    assert len(log.records) == 1


@pytest.mark.parametrize("b,c,status", [(1.0, 2.0, "differs"), (1.0, 1.04, "ok"),
                                        (0.0, 1.0, "baseline_zero"),
                                        (1.0, 0.0, "candidate_zero"), (0.0, 0.0, "both_zero"),
                                        (None, 1.0, "missing"), (float("nan"), 1.0, "nan")])
def test_compare_statuses(b, c, status):
    f = compare_figure(b, c)
    assert f["status"] == status
    if status == "differs":
        assert f["ratio"] == 2.0 and f["delta"] == 1.0


def test_compare_files(tmp_path, small_ds):
    a = stats_dataset(small_ds, grouping=GroupingConfig(gridsize=2, seed=0), phase="train")
    b = stats_dataset(small_ds, grouping=GroupingConfig(gridsize=1), phase="inference")
    a.write(tmp_path / "a")
    b.write(tmp_path / "b")
    report = compare_stats(tmp_path / "a" / "stats_train.json", tmp_path / "b")
    assert report["figures"]["mean"]["status"] == "ok"
    assert report["figures"]["mean"]["ratio"] == pytest.approx(1, rel=0.02)
    # gridsize 1 has no across-group variance: undefined, not a file that lacks it
    assert report["figures"]["var_across_group"]["status"] == "undefined"
    assert report["figures"]["canvas.coverage"]["ratio"] == pytest.approx(1.0)


def test_compare_bad_inputs(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="valid JSON"):
        load_stats(bad)
    bad.write_text("[]")
    with pytest.raises(InputError, match="at least one"):
        load_stats(bad)
    with pytest.raises(InputError, match="no such file"):
        load_stats(tmp_path / "none.json")


def test_summarise_weights_by_patches():
    recs = [{"mean": 1.0, "std": 0, "var_zero_mean": 0, "var_across_group": None,
             "intensity_scale": 2.0, "n_patches": 1},
            {"mean": 4.0, "std": 0, "var_zero_mean": 0, "var_across_group": None,
             "intensity_scale": 2.0, "n_patches": 3}]
    s = summarise(recs)
    assert s["mean"] == pytest.approx(3.25) and s["var_across_group"] is None


def _rec(**kw):
    base = {"phase": "train", "batch": "all", "gridsize": 1, "C": 1, "mean": 0.5, "std": 0.1,
            "var_zero_mean": 0.01, "var_across_group": None, "intensity_scale": 9.8,
            "n_patches": 4}
    return [{**base, **kw}]


def test_compare_rtol_statuses_and_verdict(tmp_path, capsys):
    from engine import api
    from engine.cli import main
    from engine.evaluation.compare import failing

    # the reported case: a mean ratio of 1.90 and a std ratio of 0.20 were both "ok"
    report = api.compare(_rec(), _rec(mean=0.95, std=0.02))
    f = report["figures"]
    assert f["mean"]["status"] == f["std"]["status"] == "differs"
    assert f["var_zero_mean"]["status"] == f["intensity_scale"]["status"] == "ok"
    assert f["var_across_group"]["status"] == "undefined"  # C = 1: not missing
    assert report["verdict"]["status"] == "differs"
    assert report["verdict"]["problems"] == ["mean", "std"]
    assert failing(report, ("differs",)) == ["mean", "std"]
    # a looser tolerance accepts a 90 % difference; a tighter one refuses 4 %
    loose = api.compare(_rec(), _rec(mean=0.95, std=0.1), rtol=1.0)
    assert loose["figures"]["mean"]["status"] == "ok" and loose["verdict"]["status"] == "ok"
    tight = api.compare(_rec(), _rec(mean=0.52), rtol=0.01)
    assert tight["figures"]["mean"]["status"] == "differs"
    # a file missing a figure at gridsize 2 says "missing"; zero_tol makes small values zero
    g2 = api.compare(_rec(gridsize=2, C=4), _rec(gridsize=2, C=4, var_across_group=0.1,
                                                 mean=1e-4), zero_tol=1e-3)
    assert g2["figures"]["var_across_group"]["status"] == "missing"
    assert g2["figures"]["mean"]["status"] == "candidate_zero"
    with pytest.raises(InputError, match="rtol"):
        api.compare(_rec(), _rec(), rtol=-0.1)
    # the command line: verdict line, --fail-on exit status 1, a bad status list exits 2
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_rec()))
    b.write_text(json.dumps(_rec(mean=0.95, std=0.02)))
    capsys.readouterr()
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "verdict: DIFFERS at rtol 0.05" in out and "mean, std" in out
    assert main(["compare", str(a), str(b), "--fail-on", "candidate_zero,nan"]) == 0
    assert main(["compare", str(a), str(b), "--fail-on", "differs"]) == 1
    assert "mean (differs)" in capsys.readouterr().err
    assert main(["compare", str(a), str(a), "--fail-on", "differs"]) == 0
    assert "verdict: OK" in capsys.readouterr().out
    assert main(["compare", str(a), str(b), "--fail-on", "bogus"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--fail-on:" in err[0] and "differs" in err[0]  # field -> flag


def test_patch_statistics_carry_extremes_and_per_patch(backend):
    from engine.physics.stats import collapse_check

    a = np.arange(3 * 2 * 4 * 4, dtype=np.float64).reshape(3, 2, 4, 4)
    s = patch_statistics(backend.asarray(a), backend=backend)
    assert s["min"] == 0.0 and s["max"] == float(a.max())
    pp = s["per_patch"]
    flat = a.reshape(-1, 4, 4)[:4]
    np.testing.assert_allclose(pp["mean"], flat.mean(axis=(1, 2)))
    np.testing.assert_allclose(pp["std"], flat.std(axis=(1, 2)))
    np.testing.assert_allclose(pp["min"], flat.min(axis=(1, 2)))
    np.testing.assert_allclose(pp["max"], flat.max(axis=(1, 2)))
    assert collapse_check(s)["collapsed"] is False
    flat_out = collapse_check(patch_statistics(np.full((2, 1, 4, 4), 0.7)))
    assert flat_out["collapsed"] and flat_out["reasons"] == ["var_zero_mean 0 <= 1e-06"]
    zero = collapse_check(patch_statistics(np.zeros((2, 1, 4, 4))))
    assert len(zero["reasons"]) == 2


def test_pooled_statistics_equal_the_whole_set_at_once():
    """Pooling per-batch records (any split) gives the statistics of all patches together:
    the one pooled implementation behind every ``batch: "all"`` record and ``summarise``."""
    from engine.physics.stats import PooledStats

    rng = np.random.default_rng(7)
    a = rng.gamma(2.0, 1.0, (12, 4, 8, 8))  # 12 groups of C = 4
    offsets = rng.uniform(-3, 3, (12, 4, 2))
    whole = patch_statistics(a, offsets)
    for cuts in ((1, 5), (3, 4, 9), (11,)):
        pooled = PooledStats()
        for part, off in zip(np.split(a, cuts), np.split(offsets, cuts), strict=True):
            pooled.add(patch_statistics(part, off))
        got = pooled.result()
        for key in ("mean", "std", "var_zero_mean", "min", "max"):
            assert got[key] == pytest.approx(whole[key], rel=1e-12), key
        assert got["n_patches"] == whole["n_patches"] == 48
        assert got["per_patch"]["mean"][0] == pytest.approx(a[0, 0].mean())
    records = [patch_statistics(part) for part in np.split(a, (2, 7))]
    assert summarise(records)["std"] == pytest.approx(whole["std"], rel=1e-12)
