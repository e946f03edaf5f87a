"""Argument helpers shared by the sub-commands: the parser class every command uses, its help
formatter, argument types and the option groups several commands share.

Only the standard library and torch-free engine modules are imported here (``--help`` must
not load torch, scipy or matplotlib); configs are built inside the helpers that need them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from engine.errors import InputError, PtychoError


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default, unless its help already says it or there is none to
    show (``None``, a flag that is off, a required option); choices read ``a, b or c``."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" in text or default is None or default is False
                or default is argparse.SUPPRESS or action.required
                or (not action.option_strings and action.nargs not in ("?", "*"))):
            return text
        shown = ", ".join(map(str, default)) if isinstance(default, list | tuple) else default
        return f"{text} (default: {str(shown).replace('%', '%%')})"

    def _metavar_formatter(self, action: argparse.Action, default_metavar: str):
        if action.choices is not None and action.metavar is None:
            plain = "|".join(map(str, action.choices))
            return lambda size: (plain,) * size
        return super()._metavar_formatter(action, default_metavar)


class RawDescriptionHelpFormatter(argparse.RawDescriptionHelpFormatter, HelpFormatter):
    """:class:`HelpFormatter` keeping the description's own line breaks (a list of suites)."""


class Parser(argparse.ArgumentParser):
    """The ``ptycho`` parsers: defaults in the help, one-line argument errors.

    A bad argument ends with ``<prog>: error: <message> (see '<prog> --help')`` on stderr and
    exit status 2, like every input error the engine reports.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        """A sub-command also takes the original PtychoPINN spellings (``--nepochs``,
        ``--n_images``, ``--output_dir``...), each with a one-line note of this spelling
        (:mod:`engine.cli.legacy_flags`)."""
        if args is not None and self._subparsers is None:
            from engine.cli.legacy_flags import translate

            try:
                args, notes = translate(self, list(args))
            except InputError as exc:
                self.error(str(exc))
            for note in notes:
                sys.stderr.write(f"{self.prog}: note: {note}\n")
        return super().parse_known_args(args, namespace)


def one_line_errors(p: argparse.ArgumentParser, name: str) -> None:
    """Kept for commands registered before :class:`Parser`: every parser made through
    ``ptycho``'s sub-parsers is already one, so this only normalises ``prog``."""
    p.prog = f"ptycho {name}"


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


def command_flags(parser: argparse.ArgumentParser, args: argparse.Namespace) -> dict[str, str]:
    """The flags of the command that ran (a bench suite's own parser included)."""
    flags = flags_of(parser, args.command)
    if args.command == "bench" and getattr(args, "suite", None):
        from engine.cli.bench_cmd import suite_parser

        flags = {**flags_of(suite_parser(args.suite)), **flags}
    return flags


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


def integer(text: str) -> int:
    """An integer; its range is the engine's to check (errors name the options field)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def _integer_at_least(text: str, minimum: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    return _integer_at_least(text, 0, "an integer >= 0")


def positive_int(text: str) -> int:
    return _integer_at_least(text, 1, "a positive integer")


def add_source_args(p: argparse.ArgumentParser) -> None:
    """Dataset, patch source, grouping, stitching and backend: what stitch and stats share."""
    from engine.physics.sources import SOURCES

    p.add_argument("data", help="dataset .npz (docs/conventions.md#data-format)")
    p.add_argument("--source", default="truth",
                   help=f"where the patches come from: {', '.join(SOURCES)} (truth: 'Y', or "
                        "cut from 'objectGuess')")
    add_grouping_args(p)
    add_stitch_args(p)
    add_backend_args(p)


def add_backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", default="numpy",
                   help="numpy (the float64 reference), torch (complex64, batched) or a "
                        "plugged-in backend")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:k] (torch backend)")
    p.add_argument("--batch-size", type=positive_int, default=1024, help="groups per batch")


def add_grouping_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gridsize", type=positive_int, default=1, help="g; C = g² patterns/group")
    p.add_argument("--neighbor-count", type=int, default=None,
                   help="K nearest neighbours a group draws from (default: C - 1 + 3)")
    p.add_argument("--n-groups", type=positive_int, default=None, help="groups (default: n)")
    p.add_argument("--seed", type=int, default=0, help="grouping seed")


def add_stitch_args(p: argparse.ArgumentParser, window: str = "uniform") -> None:
    from engine.physics.stitching import WINDOWS

    p.add_argument("--crop", type=positive_int, default=None, help="central window (default N/2)")
    p.add_argument("--window", choices=WINDOWS, default=window,
                   help="patch weights: uniform, or the probe's |P|^2 over the window")


def grouping_from(args: argparse.Namespace):
    from engine.physics.grouping import GroupingConfig  # scipy: only when a command runs

    return GroupingConfig(gridsize=args.gridsize, neighbor_count=args.neighbor_count,
                          n_groups=args.n_groups, seed=args.seed)


def stitch_config_from(args: argparse.Namespace):
    from engine.physics.stitching import StitchConfig

    return StitchConfig(crop=args.crop, window=args.window)


def add_bad_pixel_flag(p: argparse.ArgumentParser) -> None:
    """``--no-bad-pixels``: a command reading DATA leaves a detector file's bad pixels
    unmasked (engine.api.load_dataset finds them on load by default)."""
    p.add_argument("--no-bad-pixels", action="store_true",
                   help="do not look for saturated, hot and dead pixels on load (done by "
                        "default for CXI, NeXus and mapped HDF5 files)")


def bad_pixels_from(args: argparse.Namespace) -> bool | None:
    """``load_dataset``'s ``bad_pixels`` for ``--no-bad-pixels``."""
    return False if getattr(args, "no_bad_pixels", False) else None
