"""Engine errors name the options field; only the command line speaks of flags."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from engine.cli import main
from engine.cli.common import FIELD_FLAGS, cli_message, flags_of
from engine.errors import InputError

ENGINE = Path(__file__).resolve().parents[2] / "engine"
# the apps that parse their own command lines: their errors name the flags they read
APPS = ("cli", "bench")


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)]


def test_no_engine_error_names_a_flag():
    offenders = []
    files = [p for p in ENGINE.rglob("*.py")
             if p.relative_to(ENGINE).parts[0] not in APPS]
    assert len(files) > 50
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id.endswith("Error")):
                for text in _strings(node):
                    if "--" in text:
                        offenders.append(f"{path.relative_to(ENGINE)}:{node.lineno}: {text}")
    assert not offenders, "\n".join(offenders)


def test_the_grep_would_see_a_flag(tmp_path):
    """The scan above is not blind: it finds a flag in an f-string of a raise."""
    node = ast.parse('raise InputError(f"--resume {d}", "a directory")')
    assert any("--" in s for s in _strings(node))


def test_cli_names_the_flag_of_the_field():
    from engine.cli import build_parser

    parser = build_parser()
    train = flags_of(parser, "train")
    assert train["lr"] == "--lr" and train["cuda_graphs"] == "--cuda-graphs"
    assert flags_of(parser, "reconstruct")["update_object"] == "--no-object-update"
    assert "lr" not in flags_of(parser, "stitch")  # only the running command's flags
    assert cli_message(InputError("lr", "a number > 0", "-1"), train) == \
        "--lr: expected a number > 0, got -1"
    assert cli_message(InputError("update_object/update_probe", "one on", "both off"),
                       {**FIELD_FLAGS, "update_probe": "--update-probe"}) == \
        "--no-object-update/--update-probe: expected one on, got both off"
    # an input that is no flag of the command is left as the engine named it
    assert cli_message(InputError("diffraction", "an array"), train) == \
        "diffraction: expected an array"


@pytest.mark.parametrize("argv, flag", [
    (["train", "DATA", "--lr", "-1"], "--lr: expected"),
    (["train", "DATA", "--warmup-fraction", "1.5"], "--warmup-fraction: expected"),
    (["infer", "RUN", "DATA", "--scaling", "fixed=-2"], "--scaling: expected"),
    (["reconstruct", "DATA", "--method", "epie", "--alpha", "3"], "--alpha: expected"),
    (["simulate", "--step", "0"], "--step: expected"),
    (["reconstruct", "DATA", "--iterations", "1", "--init", "missing.npz"], "--init: expected"),
])
def test_command_line_errors_still_name_flags(argv, flag, tmp_path, capsys):
    from engine.data import write_npz
    from engine.simulation.simulate import SimulationConfig, simulate

    data = write_npz(tmp_path / "d.npz", simulate(SimulationConfig(n_positions=25, N=16,
                                                                    step=4)))
    argv = [a.replace("DATA", str(data)).replace("RUN", str(tmp_path)) for a in argv]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0], err
