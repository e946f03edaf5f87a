"""Position correction: accuracy on perturbed scans, backend parity, results and events.

The problem: a 144-position raster (step 4 px) of a 32×32 disk probe over a smooth object,
10⁵ photons per pattern. The solver is given the true positions with errors (random
1.5 px RMS, a 2 % scale with a 1° rotation, or both); the corrected positions must be within
0.3 px RMS of the truth once the common offset (which the object absorbs) is removed, and
the object's registered phase error within 25 % of that of a run from the true positions.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from engine.data import Dataset
from engine.errors import InputError
from engine.evaluation.metrics import phase_rms
from engine.events import PositionsSnapshot
from engine.iterative import options_for, reconstruct
from engine.iterative.positions import affine_fit, decompose_affine
from engine.iterative.result import ReconResult
from engine.simulation.simulate import SimulationConfig, simulate

EPOCHS = 40
BATCH = {"lsqml": 32, "epie": 16, "rpie": 16}


@pytest.fixture(scope="module")
def scan() -> Dataset:
    return simulate(SimulationConfig(object="grf", probe="disk", scan="raster", n_positions=144,
                                     N=32, step=4, nphotons=1e5, seed=1))


def perturbed(ds: Dataset, kind: str, seed: int = 5) -> Dataset:
    """``ds`` with its positions off by random (1.5 px RMS), affine (2 % scale, 1°
    rotation about the scan centre) or both kinds of error."""
    true = ds.positions
    centre = true.mean(axis=0)
    pos = true.copy()
    if kind in ("affine", "both"):
        t = np.deg2rad(1.0)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        pos = (pos - centre) @ (1.02 * rot).T + centre
    if kind in ("random", "both"):
        pos = pos + np.random.default_rng(seed).normal(0, 1.5 / np.sqrt(2), pos.shape)
    return replace(ds, ycoords=pos[:, 0], xcoords=pos[:, 1])


def rms_error(positions: np.ndarray, truth: np.ndarray) -> float:
    """RMS distance to the truth after removing the mean offset."""
    d = positions - truth
    d = d - d.mean(axis=0)
    return float(np.sqrt(np.mean(np.sum(d**2, axis=1))))


_reference: dict[str, float] = {}


def reference_phase(ds: Dataset, method: str) -> float:
    """Phase error of the same solver from the true positions (computed once per method)."""
    if method not in _reference:
        res = reconstruct(ds, options_for(method, iterations=EPOCHS, batch_size=BATCH[method]))
        _reference[method] = phase_rms(res.canvas, ds.object)
    return _reference[method]


CASES = [
    ("lsqml", "random", {}),
    ("lsqml", "affine", {"position_affine": True}),  # the pure affine map
    ("lsqml", "both", {}),
    ("lsqml", "both", {"position_affine": True, "affine_residual_limit": 5.0}),
    ("epie", "both", {}),
    ("rpie", "both", {}),
]


@pytest.mark.parametrize(("method", "kind", "extra"), CASES)
def test_corrected_positions_and_object(scan: Dataset, method: str, kind: str,
                                        extra: dict) -> None:
    given = perturbed(scan, kind)
    before = rms_error(given.positions, scan.positions)
    assert before > 0.5  # the errors the solver starts from are real (affine: 0.52 px)
    options = options_for(method, iterations=EPOCHS, batch_size=BATCH[method],
                          position_correction=True, **extra)
    res = reconstruct(given, options)
    after = rms_error(res.positions, scan.positions)
    assert after < 0.3, (before, after)
    np.testing.assert_allclose(res.initial_positions, given.positions)
    ref = reference_phase(scan, method)
    got = phase_rms(res.canvas, scan.object)
    assert got < 1.25 * ref, (got, ref)
    # without correction the same start is clearly worse: the test can fail
    plain = reconstruct(given, options.replace(position_correction=False))
    assert phase_rms(plain.canvas, scan.object) > 1.15 * got
    shifts = [r["positions_rms_shift"] for r in res.history if "positions_rms_shift" in r]
    assert len(shifts) == EPOCHS - options.position_start
    if extra.get("position_affine"):
        assert "affine_scale" in res.history[-1]


def test_affine_recovers_scale_and_rotation(scan: Dataset) -> None:
    """The pure affine map: the fitted map from the given to the corrected positions undoes
    most of the 2 % scale and 1° rotation (the history carries it)."""
    given = perturbed(scan, "affine")
    res = reconstruct(given, options_for("lsqml", iterations=EPOCHS, batch_size=32,
                                         position_correction=True, position_affine=True))
    last = res.history[-1]
    A, _ = affine_fit(given.positions, res.positions)
    fitted = decompose_affine(A)
    assert abs(fitted["scale"] - last["affine_scale"]) < 1e-9
    # the true map from the given positions is 1/1.02 and −1°
    assert abs(fitted["scale"] - 1 / 1.02) < 0.006
    assert abs(fitted["rotation_deg"] + 1.0) < 0.3
    # pure affine: no residual around the fitted map
    resid = res.positions - (given.positions @ A.T + _)
    assert np.abs(resid).max() < 1e-9


@pytest.mark.parametrize("method", ["lsqml", "epie", "rpie"])
@pytest.mark.parametrize("affine", [False, True])
def test_torch_matches_numpy(scan: Dataset, method: str, affine: bool) -> None:
    small = perturbed(scan.subset(np.arange(64)), "both", seed=2)
    options = options_for(method, iterations=5, batch_size=16, position_correction=True,
                          position_start=1, position_affine=affine, affine_residual_limit=1.0)
    a = reconstruct(small, options)
    b = reconstruct(small, options, backend="torch")
    moved = np.abs(a.positions - a.initial_positions).max()
    assert moved > 0.3
    np.testing.assert_allclose(b.positions, a.positions, atol=1e-4)


def test_off_leaves_the_solver_unchanged(scan: Dataset) -> None:
    """Correction off: the same arrays as before, no positions in the result."""
    small = scan.subset(np.arange(36))
    opts = options_for("epie", iterations=3, batch_size=8)
    a = reconstruct(small, opts)
    assert a.positions is None and a.initial_positions is None
    assert all("positions_rms_shift" not in r for r in a.history)
    # correction switched on but starting after the last epoch moves nothing
    b = reconstruct(small, opts.replace(position_correction=True, position_start=5))
    np.testing.assert_allclose(b.positions, b.initial_positions)


def test_events_saved_file_and_continuation(scan: Dataset, tmp_path) -> None:
    given = perturbed(scan.subset(np.arange(64)), "random")
    events: list = []
    opts = options_for("lsqml", iterations=4, batch_size=16, position_correction=True,
                       position_start=1)
    res = reconstruct(given, opts, emit=events.append, snapshot_every=2)
    snaps = [e for e in events if isinstance(e, PositionsSnapshot)]
    assert [s.epoch for s in snaps] == [2, 4]
    np.testing.assert_allclose(snaps[-1].current, res.positions)
    np.testing.assert_allclose(snaps[0].initial, given.positions)
    assert snaps[0].displacement.shape == (64, 2)
    assert res.summary()["positions_rms_shift"] == pytest.approx(
        np.sqrt(np.mean(np.sum((res.positions - given.positions) ** 2, axis=1))))
    out = res.save(tmp_path / "run")
    with np.load(out / "recon.npz") as z:
        np.testing.assert_allclose(z["positions"], res.positions)
        np.testing.assert_allclose(z["initial_positions"], given.positions)
        assert z["canvas"].shape == res.canvas.canvas.shape
    # 2 + 2 epochs from a result in memory equal 4 in one go, positions included
    first = reconstruct(given, opts.replace(iterations=2))
    more = reconstruct(given, opts.replace(iterations=2), previous=first)
    np.testing.assert_allclose(more.positions, res.positions, atol=1e-9)
    # and from a checkpoint
    ck = tmp_path / "ck"
    reconstruct(given, opts.replace(iterations=2), checkpoint_dir=str(ck))
    resumed = reconstruct(given, opts, resume=str(ck))
    np.testing.assert_allclose(resumed.positions, res.positions, atol=1e-9)
    assert isinstance(resumed, ReconResult)


def test_bad_position_options() -> None:
    with pytest.raises(InputError, match="position_step_limit"):
        options_for("lsqml", position_step_limit=0)
    with pytest.raises(InputError, match="position_momentum"):
        options_for("epie", position_momentum=1.5)


def test_switching_correction_on_and_off_between_legs(scan: Dataset) -> None:
    """A continuation may flip the correction: on after a plain leg (the grid grows by its
    margin, the object is kept), off after a corrected leg (the corrected positions stay,
    fixed)."""
    given = perturbed(scan.subset(np.arange(64)), "random")
    plain = options_for("epie", iterations=2, batch_size=16)
    first = reconstruct(given, plain)
    on = reconstruct(given, plain.replace(position_correction=True, position_start=0),
                     previous=first)
    assert on.positions is not None and on.object.shape[0] > first.object.shape[0]
    off = reconstruct(given, plain, previous=on)
    np.testing.assert_allclose(off.positions, on.positions)
    assert off.object.shape == on.object.shape
    assert all("positions_rms_shift" not in r for r in off.history[on.epochs:])


def test_device_index_path_matches_host_path(scan: Dataset) -> None:
    """The GPU runs' bookkeeping (corners on the device, batches by device indices),
    exercised on the CPU: the same moves as the host path, batch and epoch end alike."""
    from engine.backends import get_backend
    from engine.iterative.model import Problem, batch_model, exit_wave_update
    from engine.iterative.positions import PositionCorrector
    from engine.iterative.solver import position_geometry
    from engine.physics.stitching import CanvasGeometry

    ds = perturbed(scan.subset(np.arange(36)), "random")
    be = get_backend("torch", "cpu")
    N = ds.N
    geometry = position_geometry(CanvasGeometry.from_positions(ds.positions, N))
    corners = ds.positions - N / 2 - np.asarray(geometry.origin, float)
    X = be.asarray(ds.diffraction / np.sqrt(np.mean(ds.diffraction**2)) * N / 2)
    rng = np.random.default_rng(0)
    obj = be.asarray(np.exp(0.3j * rng.standard_normal(geometry.shape)), complex=True)
    opts = options_for("lsqml", position_correction=True, position_affine=True,
                       affine_residual_limit=1.0)
    bounds = (geometry.shape[0] - N - 1.0, geometry.shape[1] - N - 1.0)
    moved = []
    for on_device in (False, True):
        problem = Problem.create(be, X, corners.copy(), 1.0, device_indices=on_device)
        assert (problem.device_top_left is not None) == on_device
        probe = problem.to_frame(be.asarray(ds.probe[None], complex=True))
        corrector = PositionCorrector(problem.top_left, opts, bounds)
        corrector.begin_epoch(problem)
        order = problem.epoch_order(np.arange(ds.n))
        for i in range(0, ds.n, 12):
            idx = order[i:i + 12]
            measured, tl = problem.batch(idx)
            chi, _ = exit_wave_update(problem, batch_model(problem, obj, probe, tl).far,
                                      measured)
            corrector.update_batch(problem, obj, probe, idx, tl, chi)
        record = corrector.end_epoch(problem)
        assert record["positions_rms_change"] > 0.01
        moved.append(corrector.current(problem))
        np.testing.assert_allclose(problem.top_left, moved[-1])
    np.testing.assert_allclose(moved[1], moved[0], atol=1e-9)


def test_cli_position_correction(scan: Dataset, tmp_path, capsys) -> None:
    import json

    from engine import api
    from engine.cli import main

    data = tmp_path / "d.npz"
    api.save_dataset(data, perturbed(scan.subset(np.arange(49)), "random"))
    out = tmp_path / "run"
    assert main(["reconstruct", str(data), "--iterations", "3", "--batch-size", "16",
                 "--position-correction", "--affine", "--affine-residual-limit", "2",
                 "--position-start", "1", "--position-step-limit", "0.7", "--quiet",
                 "--out", str(out)]) == 0
    assert "positions corrected" in capsys.readouterr().out
    options = json.loads((out / "options.json").read_text())
    assert options["position_correction"] and options["position_affine"]
    assert options["position_step_limit"] == 0.7 and options["affine_residual_limit"] == 2
    history = json.loads((out / "history.json").read_text())["history"]
    assert "affine_scale" in history[-1] and "positions_rms_shift" not in history[0]
    with np.load(out / "recon.npz") as z:
        assert z["positions"].shape == z["initial_positions"].shape == (49, 2)
    # a position flag without --position-correction is refused in one line
    assert main(["reconstruct", str(data), "--affine", "--out", str(tmp_path / "x")]) != 0
    assert "--affine: expected only with --position-correction" in capsys.readouterr().err
