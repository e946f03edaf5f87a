"""Argument helpers shared by the sub-commands."""

from __future__ import annotations

import argparse
import sys

from engine.errors import InputError, PtychoError
from engine.physics.grouping import GroupingConfig
from engine.physics.stitching import WINDOWS, StitchConfig

# The engine's errors name options fields (``lr: expected ...``); the command line shows its
# flags instead. A field's flag is the parser's option whose ``dest`` is the field's name
# (``cuda_graphs`` -> ``--cuda-graphs``); these two are inverted switches with other names.
FIELD_FLAGS = {
    "update_object": "--no-object-update",
    "probe_power_constraint": "--no-probe-power-constraint",
}


def flags_of(parser: argparse.ArgumentParser, command: str | None = None) -> dict[str, str]:
    """``dest -> --flag`` of ``parser`` (of its sub-command ``command`` when given, and the
    sub-commands below that), plus :data:`FIELD_FLAGS`."""
    out: dict[str, str] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            subs = action.choices
            for name, sub in subs.items():
                if command is None or name == command:
                    out.update({k: v for k, v in flags_of(sub).items() if k not in out})
            continue
        long = [o for o in action.option_strings if o.startswith("--")]
        if long and command is None and action.dest not in out:
            out[action.dest] = long[0]
    return {**out, **FIELD_FLAGS}


def cli_message(exc: PtychoError, flags: dict[str, str]) -> str:
    """The error as the command line prints it: the field at fault named by its flag.

    >>> cli_message(InputError("lr", "a number > 0", "-1"), {"lr": "--lr"})
    '--lr: expected a number > 0, got -1'
    >>> cli_message(InputError("resume (gridsize)", "the checkpoint's 2", "1"),
    ...             {"resume": "--resume"})
    "--resume (gridsize): expected the checkpoint's 2, got 1"
    """
    if not isinstance(exc, InputError):
        return str(exc)
    head, sep, rest = exc.what.partition(" ")
    names = head.split("/")
    if not all(n in flags for n in names):
        return str(exc)
    what = "/".join(flags[n] for n in names) + sep + rest
    return str(InputError(what, exc.expected, exc.got))


def one_line_errors(p: argparse.ArgumentParser, name: str) -> None:
    """Bad arguments end with one line (no usage block), like every other input error."""
    def error(message: str) -> None:
        print(f"ptycho {name}: error: {message}", file=sys.stderr)
        sys.exit(2)

    p.error = error  # type: ignore[method-assign]


def integer(text: str) -> int:
    """An ``argparse`` type: any integer (the options class checks its range)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_source_args(p: argparse.ArgumentParser) -> None:
    """Dataset, patch source, grouping, stitching and backend: what stitch and stats share."""
    from engine.physics.sources import SOURCES

    p.add_argument("data", help="dataset .npz")
    p.add_argument("--source", default="truth", help=f"one of {SOURCES}")
    add_grouping_args(p)
    add_stitch_args(p)
    add_backend_args(p)


def add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="numpy", help="numpy (reference) or torch")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda[:k] (torch)")
    p.add_argument("--batch-size", type=positive_int, default=1024, help="groups per batch")


def add_grouping_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gridsize", type=positive_int, default=1, help="g; C = g² patterns/group")
    p.add_argument("--neighbor-count", type=int, default=None, help="K nearest neighbours")
    p.add_argument("--n-groups", type=positive_int, default=None, help="groups (default: n)")
    p.add_argument("--seed", type=int, default=0, help="grouping seed")


def add_stitch_args(p: argparse.ArgumentParser, window: str = "uniform") -> None:
    p.add_argument("--crop", type=positive_int, default=None, help="central window (default N/2)")
    p.add_argument("--window", choices=WINDOWS, default=window,
                   help=f"patch weights: uniform or the probe's |P|^2 (default {window})")


def grouping_from(args: argparse.Namespace) -> GroupingConfig:
    return GroupingConfig(gridsize=args.gridsize, neighbor_count=args.neighbor_count,
                          n_groups=args.n_groups, seed=args.seed)


def stitch_config_from(args: argparse.Namespace) -> StitchConfig:
    return StitchConfig(crop=args.crop, window=args.window)
