"""The original PtychoPINN command-line spellings, accepted where they mean something here
(docs/migrating-from-ptychopinn.md).

PtychoPINN's scripts spell flags with underscores (``--n_images``, ``--nepochs``,
``--output_dir``) and name the data files by flag (``--train_data_file``,
``--test_data_file``, ``--model_path``). :func:`translate` rewrites such arguments into this
project's spelling for one sub-command's parser and returns one note per rewritten flag,
which the parser prints (``ptycho train: note: --nepochs is --epochs here``). A flag whose
underscore spelling differs from an option of the command only by ``_`` ↔ ``-`` is renamed
by rule; the others are in :data:`RENAMED` and :data:`TO_POSITIONAL`; a flag with no meaning
here is refused with the reason (:data:`NO_MEANING`) or left for argparse to report.

Examples
--------
>>> import argparse
>>> p = argparse.ArgumentParser(prog="ptycho train")
>>> _ = p.add_argument("data"); _ = p.add_argument("--epochs"); _ = p.add_argument("--out")
>>> translate(p, ["--train_data_file", "d.npz", "--nepochs=3", "--output_dir", "run"])
(['d.npz', '--epochs=3', '--out', 'run'], ['--train_data_file is the positional DATA here', \
'--nepochs is --epochs here', '--output_dir is --out here'])
"""

from __future__ import annotations

import argparse

from engine.errors import InputError

# original flag -> this project's flag (where the name itself changed)
RENAMED = {
    "--n_images": "--n-groups",
    "--nepochs": "--epochs",
    "--max_epochs": "--epochs",
    "--output_dir": "--out",
    "--output_prefix": "--out",
    "--n_positions": "--n-positions",
    "--learning-rate": "--lr",
    "--learning_rate": "--lr",
    "--torch-loss-mode": "--loss",
    "--torch_loss_mode": "--loss",
    "--inference-batch-size": "--batch-size",
    "--device": "--accelerator",  # train only: infer and reconstruct have --device itself
}
# switches with nothing to switch here: dropped with a note
IGNORED = {
    "--disable_mlflow": "nothing is sent to an experiment tracker here (the run directory "
    "holds the history)",
    "--quiet": "this command has no quiet mode; its progress line goes to stderr "
    "(redirect stderr to silence it)",
}
# original flag -> the positional argument (dest) it names here
TO_POSITIONAL = {
    "--train_data_file": "data",
    "--train_data": "data",
    "--test_data_file": "data",
    "--test_data": "data",
    "--data_file": "data",
    "--model_path": "run",
    "--model_dir": "run",
}
# (command, original flag) -> why it has no counterpart here
NO_MEANING = {
    ("train", "--test_data_file"): "training here validates on a held-out stripe of the "
    "training data (--val-fraction, default 0.2), not on a second file; run 'ptycho infer' "
    "on the test file after training",
}


def _command(parser: argparse.ArgumentParser) -> str:
    return parser.prog.split()[-1]


def translate(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[list[str], list[str]]:
    """``argv`` in this project's spelling for ``parser`` and the notes to print.

    Raises :class:`InputError` for an original flag that has no meaning for this command.
    """
    options = parser._option_string_actions  # noqa: SLF001 - argparse's own table
    positionals = [a.dest for a in parser._actions if not a.option_strings]  # noqa: SLF001
    out: list[str] = []
    moved: dict[str, str] = {}
    notes: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            out += argv[i - 1:]
            break
        flag, eq, value = arg.partition("=")
        legacy = "_" in flag or flag in RENAMED or flag in TO_POSITIONAL or flag in IGNORED
        if not arg.startswith("--") or not legacy or flag in options:  # this parser's own
            out.append(arg)
            continue
        if flag in IGNORED and not eq:
            notes.append(f"{flag} is ignored here: {IGNORED[flag]}")
            continue
        why = NO_MEANING.get((_command(parser), flag))
        if why is not None:
            raise InputError(flag, f"a flag of 'ptycho {_command(parser)}'", f"PtychoPINN's "
                             f"flag, which has no counterpart: {why}")
        target = TO_POSITIONAL.get(flag)
        if target is not None and target in positionals and target not in moved:
            if not eq:
                if i >= len(argv):
                    raise InputError(flag, "a value (a path)", "none")
                value, i = argv[i], i + 1
            moved[target] = value
            notes.append(f"{flag} is the positional {target.upper()} here")
            continue
        new = RENAMED.get(flag, flag.replace("_", "-"))
        if new in options:
            out.append(new + eq + value)
            notes.append(f"{flag} is {new} here")
            continue
        out.append(arg)  # unknown here: argparse says so
    # positionals named by flag go first, in the parser's order
    lead = [moved[d] for d in positionals if d in moved]
    return lead + out, notes
