"""Every sub-command over a table of bad files and bad options: exit status 2, exactly one
line on stderr, never a traceback (and never silent acceptance)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from engine.cli import main
from engine.data import write_npz
from engine.physics.stitching import Canvas
from engine.simulation.simulate import SimulationConfig, simulate


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    ds = simulate(SimulationConfig(n_positions=16, N=32, step=6, seed=0))
    good = write_npz(d / "data.npz", ds)
    raw = good.read_bytes()
    f = {"data": good, "dir": d}
    (d / "empty.npz").write_bytes(b"")
    (d / "text.npz").write_bytes(b"this is not an archive\n")
    (d / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    with open(d / "single.npz", "wb") as fh:
        np.save(fh, np.ones(3))
    arrays = dict(np.load(good, allow_pickle=False))
    np.savez(d / "pickled.npz", **{**arrays, "xcoords": np.array([{"x": 1}] * ds.n)})
    cplx = {**arrays, "diffraction": arrays["diffraction"].astype(np.complex64) * (1 + 1j)}
    np.savez(d / "complex.npz", **cplx)
    x2d = {k: v for k, v in arrays.items() if k not in ("Y", "scan_index", "diffraction")}
    n = 100
    np.savez(d / "xcoords2d.npz", **{**x2d, "xcoords": np.full((10, 10), 40.0),
                                     "ycoords": np.full(n, 40.0),
                                     "diffraction": np.ones((n, 32, 32), np.float32)})
    canvas = Canvas(np.ones((69, 69), np.complex64), np.ones((69, 69), bool), (0, 0),
                    np.ones((69, 69), np.float32))
    f["canvas"] = canvas.save(d / "canvas.npz")
    np.savez(d / "canvas_pickled.npz", canvas=np.array([object()] * 4, dtype=object),
             coverage=np.ones(4, bool), origin=np.zeros(2, np.int64))
    np.savez(d / "canvas_mask.npz", canvas=np.ones((10, 69), np.complex64),
             coverage=np.ones((69, 69), bool), origin=np.zeros(2, np.int64))
    (d / "empty.json").write_bytes(b"")
    (d / "binary.json").write_bytes(bytes(range(256)))
    (d / "stats.json").write_text(json.dumps([{"phase": "truth", "batch": None, "mean": 1.0}]))
    ck = d / "ck"
    ck.mkdir()
    (ck / "checkpoint.npz").write_bytes(b"")
    import pickle

    (d / "raw_pickle.npz").write_bytes(pickle.dumps({"diffraction": 1}))
    header = io.BytesIO()  # a .npy header declaring 146 TiB in a file of a few bytes
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**7, 2000, 2000)})
    with zipfile.ZipFile(d / "bomb.npz", "w") as z:
        for key in ("xcoords", "ycoords", "probeGuess"):
            z.writestr(f"{key}.npy", _npy(arrays[key]))
        z.writestr("diffraction.npy", header.getvalue() + b"\0" * 64)
    one = simulate(SimulationConfig(n_positions=1, N=32, step=6, seed=0))
    f["one"] = write_npz(d / "one.npz", one)
    for name in ("empty", "text", "truncated", "single", "pickled", "complex", "xcoords2d",
                 "canvas_pickled", "canvas_mask", "raw_pickle", "bomb"):
        f[name] = d / f"{name}.npz"
    for name in ("empty", "binary", "stats"):
        f[f"{name}_json"] = d / f"{name}.json"
    f["ck"] = ck
    return f


BAD_DATA = ["empty", "text", "truncated", "single", "pickled", "complex", "xcoords2d",
            "raw_pickle", "bomb"]
BAD_CANVAS = ["empty", "text", "truncated", "single", "canvas_pickled", "canvas_mask", "data"]

# every command that reads a dataset, with {bad} where the dataset goes
DATA_COMMANDS = [
    ["simulate", "--from-npz", "{bad}", "--out", "{out}/s.npz"],
    ["stitch", "{bad}", "--out", "{out}/c.npz"],
    ["stats", "{bad}", "--out", "{out}/s.json"],
    ["train", "{bad}", "--out", "{out}/run"],
    ["train", "{bad}", "--out", "{out}/run", "--dry-run"],
    ["infer", "{dir}", "{bad}", "--out", "{out}/inf"],
    ["reconstruct", "{bad}", "--out", "{out}/rec"],
    ["reconstruct", "{data}", "--init", "{bad}", "--out", "{out}/rec"],
    ["evaluate", "{canvas}", "--truth", "{bad}", "--out", "{out}/e.json"],
]
CANVAS_COMMANDS = [
    ["evaluate", "{bad}", "--truth", "{data}", "--out", "{out}/e.json"],
    ["compare", "{bad}", "{canvas}"],
    ["compare", "{canvas}", "{bad}"],
]
OTHER = [
    ["compare", "{empty_json}", "{stats_json}"],
    ["compare", "{stats_json}", "{binary_json}"],
    ["compare", "{stats_json}", "{stats_json}", "--zero-tol", "-1"],
    ["stats", "{data}", "--limit", "0", "--out", "{out}/s.json"],
    ["stats", "{data}", "--limit", "-1", "--out", "{out}/s.json"],
    ["inventory", "{data}"],
    ["inventory", "{out}/missing"],
    ["infer", "{empty}", "{data}", "--out", "{out}/inf"],
    ["reconstruct", "{data}", "--resume", "{ck}", "--out", "{out}/rec"],
    ["reconstruct", "{data}", "--init", "{dir}", "--out", "{out}/rec"],
    ["simulate", "--nphotons", "1e300", "--n-positions", "16", "--N", "32", "--out", "{out}/s"],
    ["simulate", "--nphotons", "-5", "--n-positions", "16", "--N", "32", "--out", "{out}/s"],
    ["train", "{data}", "--out", "{out}/run", "--accelerator", "cuda"],
    ["train", "{data}", "--out", "{out}/run", "--strategy", "foo", "--accelerator", "cpu"],
    ["train", "{data}", "--out", "{out}/run", "--accelerator", "tpu-ish"],
    ["train", "{data}", "--out", "{out}/run", "--n-groups", "100000"],
    ["train", "{data}", "--out", "{out}/run", "--n-groups", "100000", "--dry-run"],
    ["stitch", "{data}", "--n-groups", "100000", "--out", "{out}/c.npz"],
    ["stats", "{data}", "--n-groups", "100000", "--out", "{out}/s.json"],
    ["bench", "physics", "--device", "cuda", "--out", "{out}/b.json"],
    ["demo", "--n-positions", "0", "--out", "{out}/demo"],
]


def _main(argv) -> int:
    """``main`` in process; a bad flag ends in argparse's ``SystemExit`` (status 2)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def _npy(a) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def _argv(template, files, tmp_path, bad=None):
    values = {k: str(v) for k, v in files.items()}
    values.update(out=str(tmp_path), bad=str(files[bad]) if bad else "")
    return [a.format(**values) for a in template]


def _assert_one_line(capsys, code, argv):
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2, (argv, code, err)
    assert len(lines) == 1 and "Traceback" not in err, (argv, err)
    assert lines[0].startswith(f"ptycho {argv[0]}: error: "), lines[0]
    return lines[0]


def _tree(root):
    return sorted((p.relative_to(root).as_posix(), p.stat().st_mtime_ns)
                  for p in root.rglob("*"))


def _needs_cuda_absent(argv):
    if "cuda" in argv:
        import torch

        if torch.cuda.is_available():
            pytest.skip("CUDA present: the refusal under test needs a machine without it")


@pytest.mark.parametrize("bad", BAD_DATA)
@pytest.mark.parametrize("template", DATA_COMMANDS, ids=lambda t: "-".join(t[:3:2]))
def test_bad_data_files(files, tmp_path, capsys, template, bad):
    argv = _argv(template, files, tmp_path, bad)
    if (argv[0] == "evaluate" or "--init" in argv) and bad in ("complex", "xcoords2d",
                                                                "pickled"):
        pytest.skip("reads only the file's object, which is sound")
    before = _tree(files["dir"])
    line = _assert_one_line(capsys, _main(argv), argv)
    assert str(files[bad]) in line or files[bad].name in line, line
    # nothing written: no output, no run directory left by the refused command
    assert list(tmp_path.iterdir()) == [] and _tree(files["dir"]) == before


@pytest.mark.parametrize("bad", BAD_CANVAS)
@pytest.mark.parametrize("template", CANVAS_COMMANDS, ids=lambda t: "-".join(t[:2]))
def test_bad_canvas_files(files, tmp_path, capsys, template, bad):
    argv = _argv(template, files, tmp_path, bad)
    line = _assert_one_line(capsys, _main(argv), argv)
    assert files[bad].name in line, line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("template", OTHER, ids=lambda t: " ".join(t[:1] + t[-2:]))
def test_bad_options_and_other_files(files, tmp_path, capsys, template):
    argv = _argv(template, files, tmp_path)
    _needs_cuda_absent(argv)
    _assert_one_line(capsys, _main(argv), argv)


@pytest.mark.slow  # a fresh interpreter each (imports torch and Lightning)
@pytest.mark.parametrize("template", [
    ["stitch", "{empty}", "--out", "{out}/c.npz"],
    ["train", "{data}", "--out", "{out}/run", "--strategy", "foo", "--accelerator", "cpu"],
    ["compare", "{canvas_pickled}", "{canvas}"],
])
def test_as_a_process(files, tmp_path, template):
    """The same guarantee outside pytest: the real entry point, stderr as a user sees it."""
    argv = _argv(template, files, tmp_path)
    proc = subprocess.run([sys.executable, "-m", "engine.cli", *argv], capture_output=True,
                          text=True, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, \
        proc.stderr


@pytest.mark.parametrize("command", [
    ["train", "{data}", "--out", "{out}/run", "--n-groups", "100000", "--val-fraction", "0.25"],
    ["stitch", "{data}", "--n-groups", "100000", "--out", "{out}/c.npz"],
])
def test_too_many_groups_is_one_rule_naming_what_is_available(files, tmp_path, capsys,
                                                              command):
    line = _assert_one_line(capsys, _main(_argv(command, files, tmp_path)), command)
    available = "12" if command[0] == "train" else "16"  # 16 positions, 4 held out
    assert f"at most {available}" in line and "100000" in line, line
