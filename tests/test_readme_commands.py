"""Every ``ptycho`` command in the README's fenced blocks runs, in order, as written.

Each block's commands (backslash continuations joined) run in one scratch directory, so a
command can use what an earlier one wrote, exactly as a reader following the README would.
Sizes are shrunk so the whole session takes a minute or two; that is the only change, and
it is made by the table below:

- ``SHRINK``: the value of a flag wherever it appears (e.g. ``--n-positions 1024`` runs
  as ``--n-positions 64``);
- ``APPEND``: flags added to one command (``train`` gets ``--epochs 1`` over its preset);
- ``SETUP``: files the README asks the reader to bring (``experiment.npz``: a measured
  object, probe and positions), made here from the simulated data.

A command the README names but that cannot run here (``ptycho gui`` needs a display) is
listed in ``SKIP``. A README command that fails, or a flag that no longer exists, fails
this test with the command's line.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from engine.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"

SHRINK = {
    "--n-positions": "64", "--N": "32", "--step": "4", "--iterations": "2",
    "--n-groups": "32", "--crop": "16",
}
APPEND = {
    "train": ["--epochs", "1", "--base-channels", "4"],
    "demo": ["--n-positions", "64", "--iterations", "2"],
    "bench": ["--N", "32", "--n", "64", "--stitch-patches", "64", "--batch-size", "64",
              "--repeat", "1"],
}
SETUP = {"experiment.npz": "data.npz"}
SKIP = {"gui"}


def readme_commands(text: str) -> list[list[str]]:
    """The ``ptycho`` commands of the fenced blocks, continuations joined, as argv lists."""
    commands = []
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith("ptycho "):
                commands.append(shlex.split(line)[1:])
    return commands


def shrunk(argv: list[str]) -> list[str]:
    out = list(argv)
    for i, word in enumerate(out[:-1]):
        if word in SHRINK:
            out[i + 1] = SHRINK[word]
    return out + APPEND.get(argv[0], [])


def test_the_readme_has_a_session_of_commands():
    commands = readme_commands(README.read_text(encoding="utf-8"))
    names = {argv[0] for argv in commands}
    # the walk-through covers the main commands; an edit that drops the block fails here
    assert {"simulate", "train", "infer", "reconstruct", "evaluate", "compare"} <= names
    assert all("[" not in " ".join(argv) and "<" not in " ".join(argv)
               for argv in commands), "README commands must be runnable as written"


@pytest.mark.slow
def test_every_readme_command_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in readme_commands(README.read_text(encoding="utf-8")):
        if argv[0] in SKIP:
            continue
        for made, source in SETUP.items():
            if made in argv and not Path(made).exists():
                shutil.copy(source, made)
        line = "ptycho " + " ".join(argv)
        try:
            code = main(shrunk(argv))
        except SystemExit as exc:  # argparse: a flag the README names no longer exists
            code = exc.code
        err = capsys.readouterr().err
        assert code == 0, f"README command failed ({code}): {line}\n{err[-2000:]}"
