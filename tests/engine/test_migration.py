"""Moving from PtychoPINN: its statistics files, its flag spellings and its TensorFlow
bundles (docs/migrating-from-ptychopinn.md)."""

from __future__ import annotations

import json
import zipfile

import pytest

from engine import api
from engine.cli import build_parser, main
from engine.errors import InputError
from engine.evaluation.legacy_stats import LEGACY_BATCHES, LEGACY_DEBUG, NATIVE
from engine.network.bundles import load_bundle

NATIVE_RECORDS = [
    {"phase": "train", "batch": 0, "C": 1, "gridsize": 1, "n_patches": 16, "mean": 0.5,
     "std": 0.1, "var_zero_mean": 0.01, "var_across_group": None},
    {"phase": "train", "batch": 1, "C": 1, "gridsize": 1, "n_patches": 8, "mean": 0.8,
     "std": 0.2, "var_zero_mean": 0.03, "var_across_group": None},
]


def _legacy(records):
    """The same batches as PtychoPINN's patch-statistics logger writes them."""
    return [{"phase": r["phase"], "batch_idx": r["batch"], "batch_size": r["n_patches"],
             "global_mean": r["mean"], "global_std": r["std"],
             "var_zero_mean": r["var_zero_mean"], "per_patch": []} for r in records]


def test_compare_reads_ptychopinn_statistics_and_says_so(tmp_path, capsys):
    legacy = tmp_path / "pinn" / "torch_patch_stats.json"
    legacy.parent.mkdir()
    legacy.write_text(json.dumps(_legacy(NATIVE_RECORDS)))
    native = tmp_path / "stats_train.json"
    native.write_text(json.dumps(NATIVE_RECORDS))
    report = api.compare(native, legacy.parent)  # a directory: its torch_patch_stats.json
    assert report["baseline"]["naming"] == NATIVE
    assert report["candidate"]["naming"] == LEGACY_BATCHES
    for key in ("mean", "std", "var_zero_mean"):
        assert report["figures"][key]["status"] == "ok"
        assert report["figures"][key]["candidate"] == pytest.approx(
            report["figures"][key]["baseline"], rel=1e-12)
    # pooled over both batches, weighted by batch size: (16·0.5 + 8·0.8) / 24
    assert report["figures"]["mean"]["candidate"] == pytest.approx(0.6)
    assert main(["compare", str(native), str(legacy)]) == 0
    out = capsys.readouterr().out
    assert f"candidate: read with the {LEGACY_BATCHES} naming" in out
    assert "baseline: read with" not in out


def test_compare_reads_the_ptychopinn_debug_dump(tmp_path):
    dump = tmp_path / "stats.json"
    dump.write_text(json.dumps({
        "patch_amplitude": {"mean": 0.5, "std": 0.1, "min": 0.0, "max": 1.0,
                            "var_zero_mean": 0.01},
        "canvas_amplitude": {"mean": 0.4, "std": 0.1, "min": 0.0, "max": 0.9}}))
    report = api.compare(dump, dump)
    assert report["baseline"]["naming"] == LEGACY_DEBUG
    assert report["figures"]["mean"]["baseline"] == 0.5
    assert report["figures"]["canvas.mean"]["status"] == "ok"


@pytest.mark.parametrize(("legacy", "native"), [
    (["d.npz", "--output_dir", "o", "--nepochs", "3", "--n_images", "7",
      "--neighbor_count", "5", "--gridsize", "2", "--batch_size", "4"],
     ["d.npz", "--out", "o", "--epochs", "3", "--n-groups", "7", "--neighbor-count", "5",
      "--gridsize", "2", "--batch-size", "4"]),
    (["--train_data_file", "d.npz", "--output_dir=o", "--nepochs=3"],
     ["d.npz", "--out=o", "--epochs=3"]),
])
def test_ptychopinn_train_flags_parse_as_this_spelling(legacy, native, capsys):
    a = build_parser("train").parse_args(["train", *legacy])
    notes = capsys.readouterr().err.splitlines()
    b = build_parser("train").parse_args(["train", *native])
    assert capsys.readouterr().err == ""
    assert {k: v for k, v in vars(a).items() if k != "handler"} == \
        {k: v for k, v in vars(b).items() if k != "handler"}
    assert notes and all(n.startswith("ptycho train: note: --") for n in notes)
    assert "ptycho train: note: --nepochs is --epochs here" in notes


def test_ptychopinn_infer_and_reconstruct_flags(capsys):
    a = build_parser("infer").parse_args(["infer", "--model_path", "run", "--test_data",
                                          "t.npz", "--output_dir", "o"])
    assert (a.run, a.data, a.out) == ("run", "t.npz", "o")
    r = build_parser("reconstruct").parse_args(["reconstruct", "d.npz", "--out", "o",
                                                "--quiet", "--batch_size", "8"])
    assert r.quiet and r.batch_size == 8
    err = capsys.readouterr().err
    assert "--model_path is the positional RUN here" in err
    assert "--batch_size is --batch-size here" in err


def test_a_flag_without_meaning_here_is_refused_with_the_reason(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser("train").parse_args(["train", "d.npz", "--out", "o", "--test_data_file",
                                          "t.npz"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "--val-fraction" in err and "ptycho infer" in err


def _tf_bundle(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("diffraction_to_obj/params.dill", b"\x80\x04malicious pickle")
        z.writestr("diffraction_to_obj/model.keras", b"weights")
    return path


def test_a_tensorflow_bundle_is_recognised_and_refused(tmp_path, capsys):
    bundle = _tf_bundle(tmp_path / "wts.h5.zip")
    with pytest.raises(InputError) as exc:
        load_bundle(bundle)
    msg = str(exc.value)
    assert "PtychoPINN TensorFlow bundle" in msg and "params.dill" in msg
    assert "pickle" in msg and "ptycho train" in msg
    with pytest.raises(InputError, match="PtychoPINN TensorFlow bundle"):
        load_bundle(tmp_path)  # its output directory
    data = api.simulate(api.SimulationConfig(object="asym", n_positions=16, N=32, step=6))
    api.save_dataset(tmp_path / "d.npz", data)
    assert main(["infer", str(bundle), str(tmp_path / "d.npz"), "--out",
                 str(tmp_path / "inf")]) == 2
    err = capsys.readouterr().err
    assert "PtychoPINN TensorFlow bundle" in err and len(err.strip().splitlines()) == 1


def test_renamed_and_ignored_torch_flags(capsys):
    a = build_parser("train").parse_args(["train", "d.npz", "--out", "o", "--max_epochs", "4",
                                          "--learning-rate", "0.002", "--torch-loss-mode",
                                          "mae", "--device", "cpu", "--disable_mlflow",
                                          "--quiet"])
    assert (a.epochs, a.lr, a.loss, a.accelerator) == (4, 0.002, "mae", "cpu")
    err = capsys.readouterr().err
    assert "--disable_mlflow is ignored here" in err and "--quiet is ignored here" in err
    # infer has --device itself: kept as it is
    b = build_parser("infer").parse_args(["infer", "r", "d.npz", "--out", "o", "--device",
                                          "cpu"])
    assert b.device == "cpu" and capsys.readouterr().err == ""
