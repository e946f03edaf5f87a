"""Every ``engine.api`` action over a table of bad arguments (issue 21, item 8): one
:class:`InputError` line naming the parameter and the expected type, raised before any
work (no traceback from deep inside, no file written); paths are accepted where a dataset,
canvas or ground truth is natural, the same way in every action."""

from __future__ import annotations

import os

import numpy as np
import pytest

from engine import api
from engine.errors import InputError


@pytest.fixture(scope="module")
def ds():
    return api.simulate(api.SimulationConfig(object="asym", n_positions=16, N=32, step=6,
                                             seed=0))


@pytest.fixture(scope="module")
def files(ds, tmp_path_factory):
    d = tmp_path_factory.mktemp("api")
    data = api.save_dataset(d / "data.npz", ds)
    canvas = api.stitch(ds).save(d / "canvas.npz")
    return {"data": data, "canvas": canvas}


def _tree(root):
    return sorted((p.relative_to(root).as_posix(), p.stat().st_mtime_ns)
                  for p in root.rglob("*"))


SIM = api.SimulationConfig(object="asym", n_positions=16, N=32, step=6)

# (call, the parameter the one line must name); ``d`` is the dataset, ``o`` an output path
CASES = {
    "load_dataset number": (lambda d, o: api.load_dataset(42), "path"),
    "load_dataset None": (lambda d, o: api.load_dataset(None), "path"),
    "save_dataset not a dataset": (lambda d, o: api.save_dataset(o / "x.npz", {"a": 1}), "data"),
    "load_canvas dict": (lambda d, o: api.load_canvas({}), "path"),
    "simulate dict": (lambda d, o: api.simulate({"N": 32}), "options"),
    "simulate str": (lambda d, o: api.simulate("asym"), "options"),
    "simulate None": (lambda d, o: api.simulate(None), "options"),
    "simulate emit": (lambda d, o: api.simulate(SIM, emit=3), "emit"),
    "simulate control": (lambda d, o: api.simulate(SIM, control="stop"), "control"),
    "simulate probe list": (lambda d, o: api.simulate(SIM, probe_array=[1, 2]), "probe_array"),
    "group None": (lambda d, o: api.group(None), "data"),
    "group options str": (lambda d, o: api.group(d, "gridsize=2"), "options"),
    "stitch options str": (lambda d, o: api.stitch(d, "foo"), "options"),
    "stitch grouping dict": (lambda d, o: api.stitch(d, grouping={"gridsize": 2}), "grouping"),
    "stitch batch": (lambda d, o: api.stitch(d, batch_size="8"), "batch_size"),
    "stitch backend": (lambda d, o: api.stitch(d, backend=None), "backend"),
    "patch_stats number": (lambda d, o: api.patch_stats(3.0), "data"),
    "patch_stats limit": (lambda d, o: api.patch_stats(d, limit="all"), "limit"),
    "plan_training dict": (lambda d, o: api.plan_training(d, {"epochs": 1}), "options"),
    "train None": (lambda d, o: api.train(d, None, out=o / "run"), "options"),
    "train out None": (lambda d, o: api.train(d, api.TrainConfig(epochs=1), out=None), "out"),
    "train options str": (lambda d, o: api.train(d, "quick", out=o / "run"), "options"),
    "train data None": (lambda d, o: api.train(None, None, out=o / "run"), "data"),
    "train overwrite str": (lambda d, o: api.train(d, api.TrainConfig(), out=o / "run",
                                                   overwrite="yes"),
                            "overwrite"),
    "infer None data": (lambda d, o: api.infer(None, o / "b"), "data"),
    "infer bundle number": (lambda d, o: api.infer(d, 5), "bundle"),
    "infer options dict": (lambda d, o: api.infer(d, o / "b", {"batch_size": 4}), "options"),
    "reconstruct dict": (lambda d, o: api.reconstruct(d, {"iterations": 2}), "options"),
    "reconstruct None": (lambda d, o: api.reconstruct(d, None), "options"),
    "reconstruct previous": (lambda d, o: api.reconstruct(d, api.EPIEOptions(), previous=1),
                             "previous"),
    "reconstruct every": (lambda d, o: api.reconstruct(d, api.EPIEOptions(),
                                                       checkpoint_every=0), "checkpoint_every"),
    "reconstruct out": (lambda d, o: api.reconstruct(d, api.EPIEOptions(), out=7), "out"),
    "load_truth None": (lambda d, o: api.load_truth(None), "path"),
    "network_then_refine opts": (lambda d, o: api.network_then_refine(d, "lsqml"), "options"),
    "network_then_refine bundle": (lambda d, o: api.network_then_refine(d, bundle=1),
                                   "bundle"),
    "evaluate number": (lambda d, o: api.evaluate(1, d.object), "canvas"),
    "evaluate truth 1-D": (lambda d, o: api.evaluate(api.stitch(d), np.ones(3)), "truth"),
    "evaluate truth str list": (lambda d, o: api.evaluate(api.stitch(d), ["a"]), "truth"),
    "compare numbers": (lambda d, o: api.compare(1, 2), "baseline"),
    "compare mixed": (lambda d, o: api.compare(api.stitch(d), [{"mean": 1.0}]), "candidate"),
    "preview None": (lambda d, o: api.preview(None), "data"),
    "preview options str": (lambda d, o: api.preview(d, "x"), "options"),
    "preview emit": (lambda d, o: api.preview(d, emit=3), "emit"),
    "iter_preview dict": (lambda d, o: next(api.iter_preview(d, {"a": 1})), "options"),
    "compare_view numbers": (lambda d, o: api.compare_view(1, 2), "a"),
    "inspect number": (lambda d, o: api.inspect(3), "path"),
    "convert None": (lambda d, o: api.convert(None, o / "x.cxi"), "src"),
    "convert dst number": (lambda d, o: api.convert(o / "x.npz", 5), "dst"),
    "save_reconstruction str": (lambda d, o: api.save_reconstruction(o / "r.cxi", "recon", d),
                                "result"),
    "load_reconstruction None": (lambda d, o: api.load_reconstruction(None), "path"),
    "run_product None": (lambda d, o: api.run_product(None, d), "run"),
    "initial_probe None": (lambda d, o: api.initial_probe(None), "data"),
    "initial_probe propagation": (lambda d, o: api.initial_probe(d, propagation="fresnel"),
                                  "propagation"),
    "resolution split": (lambda d, o: api.resolution(d, api.LSQMLOptions(), split="halves"),
                         "split"),
    "resolution None": (lambda d, o: api.resolution(None, api.LSQMLOptions()), "data"),
    "prepare options dict": (lambda d, o: api.prepare(d, {"bin": 2}), "options"),
    "find_bad_pixels None": (lambda d, o: api.find_bad_pixels(None), "data"),
    "options unknown field": (lambda d, o: api.LSQMLOptions(foo=1), "LSQMLOptions"),
    "options misspelt": (lambda d, o: api.StitchConfig(windw="probe"), "did you mean 'window'"),
    "options positional": (lambda d, o: api.GroupingConfig(*range(30)), "GroupingConfig"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_arguments_are_one_line_naming_the_parameter(ds, tmp_path, case, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything written relative to the working directory shows
    call, name = CASES[case]
    before = _tree(tmp_path)
    with pytest.raises(InputError) as info:
        call(ds, tmp_path)
    msg = str(info.value)
    assert "\n" not in msg and name in msg and "expected" in msg, msg
    assert type(info.value) is InputError
    assert _tree(tmp_path) == before  # nothing written


def test_paths_are_accepted_where_data_canvas_or_truth_is_natural(ds, files):
    by_path = api.stitch(files["data"])
    np.testing.assert_array_equal(by_path.coverage, api.stitch(ds).coverage)
    assert api.group(str(files["data"])).indices.shape[0] == ds.n
    figures = api.evaluate(files["canvas"], files["data"])  # canvas and truth as paths
    assert figures["amplitude"]["ssim"] > 0.99
    same = api.compare(files["canvas"], os.fspath(files["canvas"]))
    assert same == api.compare(api.load_canvas(files["canvas"]),
                               api.load_canvas(files["canvas"]))
