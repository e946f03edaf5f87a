"""The ``ptycho`` command line.

Each sub-command lives in its own module of this package exposing ``register(subparsers)``;
add a module name to ``COMMANDS`` (and its one-line summary to ``SUMMARIES``) to add a
command. Only the command being run is imported, and command modules import the engine's
heavy parts (torch, scipy, matplotlib) inside their ``run``: ``--help`` and argument errors
answer at once. Every parser is a :class:`~engine.cli.common.Parser`: each option's help
shows its default, and a bad argument ends with one line plus a pointer to ``--help``
(exit status 2), like every other input error.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from importlib import import_module
from typing import Any

from engine import __version__
from engine.cli.common import Parser
from engine.errors import PtychoError, os_reason

COMMANDS = (
    "simulate",
    "prepare",
    "stitch",
    "stats",
    "compare",
    "bench",
    "demo",
    "evaluate",
    "inventory",
    "reconstruct",
    "train",
    "infer",
    "gui",
    "inspect",
    "convert",
)

# What ``ptycho --help`` lists without importing every command; a command missing here is
# imported for its own summary.
SUMMARIES = {
    "simulate": "simulate a dataset with ground truth (or from a measured object and probe)",
    "prepare": "mask bad pixels; subtract dark, divide flat, centre, crop and bin a dataset",
    "stitch": "stitch patches of a source into a canvas (canvas, coverage, origin)",
    "stats": "patch and canvas statistics of a source, as JSON (and patch-grid PNGs)",
    "compare": "compare two statistics files, runs or canvases figure by figure",
    "bench": "run a benchmark suite and write its JSON result",
    "demo": "the headless demo: simulate, stitch, measure, write a report",
    "evaluate": "score a reconstruction against the ground-truth object",
    "inventory": "list what a run directory holds",
    "reconstruct": "reconstruct with an iterative solver (ePIE, rPIE, LSQ-ML)",
    "train": "train the physics-informed network (writes a bundle)",
    "infer": "reconstruct with a trained network bundle",
    "gui": "open the napari workbench (headless: run the demo)",
    "inspect": "summarise a data file (CXI, NeXus, Ptychodus, NPZ, mapped HDF5) and warn",
    "convert": "convert data or reconstructions between NPZ, CXI and Ptychodus products",
}


def _module(name: str):
    return import_module(f"{__name__}.{name.replace('-', '_')}_cmd")


def build_parser(command: str | None = None) -> Parser:
    """The ``ptycho`` parser with every sub-command registered; with ``command``, only that
    one is imported and registered (``""``: none), the others listed by their summary."""
    parser = Parser(prog="ptycho", description="Ptychography workbench: simulate, train, "
                    "infer, reconstruct, stitch, measure and compare. 'ptycho COMMAND --help' "
                    "describes a command; conventions: docs/conventions.md.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"ptycho {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=Parser)
    for name in COMMANDS:
        if command in (None, name) or name not in SUMMARIES:
            _module(name).register(sub)
        else:
            sub.add_parser(name, help=SUMMARIES[name], add_help=False)
    return parser


# The outputs of each command (argument, is a directory): checked writable before any work
# is done, so a bad --out costs nothing (train, infer and reconstruct hold theirs as runs)
OUTPUTS = {
    "simulate": (("out", False),),
    "prepare": (("out", False),),
    "stitch": (("out", False),),
    "stats": (("out", False), ("grid_png", False)),
    "compare": (("out", False),),
    "evaluate": (("out", False),),
    "inventory": (("out", False),),
    "demo": (("out", True),),
    "train": (("out", True),),
    "infer": (("out", True),),
    "reconstruct": (("out", True),),
    "convert": (("dst", False),),
    "inspect": (("json", False),),
}


def check_outputs(args: argparse.Namespace) -> None:
    """Refuse an unwritable output of ``args`` before the command does any work."""
    from engine.rundir import check_writable

    if getattr(args, "dry_run", False):
        return
    for name, directory in OUTPUTS.get(args.command, ()):
        value = getattr(args, name, None)
        if value is not None:
            check_writable(value, directory=directory, field=name)


def command_of(argv: list[str]) -> str | None:
    """The sub-command named in ``argv`` (the first word that is one), if any."""
    return next((a for a in argv if a in COMMANDS), None)


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP during a command: unwinds like Ctrl-C (SIGINT), so a run stops
    where it is, keeps its last checkpoint and puts back a run it was replacing."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _terminate(signum: int, frame: Any) -> None:
    raise Terminated(signum)


@contextlib.contextmanager
def _signals_end_runs() -> Iterator[None]:
    """SIGTERM and SIGHUP raise :class:`Terminated` for the command's duration only; the
    previous handlers are back afterwards (a caller's own, e.g. a test runner's)."""
    names = [n for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers: the caller's stay in charge
        return
    saved = {n: signal.signal(getattr(signal, n), _terminate) for n in names}
    try:
        yield
    finally:
        for n, handler in saved.items():
            signal.signal(getattr(signal, n), handler)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    with _signals_end_runs():
        return _main(argv)


def _main(argv: list[str]) -> int:
    parser = build_parser(command_of(argv) or "")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        check_outputs(args)
        return int(args.handler(args) or 0)
    except PtychoError as exc:
        from engine.cli.common import cli_message, command_flags

        print(f"ptycho {args.command}: error: {cli_message(exc, command_flags(parser, args))}",
              file=sys.stderr)
        return 2
    except OSError as exc:  # any other file-system failure: the path and the reason
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"ptycho {args.command}: error: {where}{os_reason(exc)}", file=sys.stderr)
        return 2
    except Terminated as exc:
        name = signal.Signals(exc.signum).name
        print(f"ptycho {args.command}: terminated by {name} (stopped as by Ctrl-C)",
              file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print(f"ptycho {args.command}: interrupted", file=sys.stderr)
        return 130
    except MemoryError:  # declared sizes are checked before reading; this is the backstop
        print(f"ptycho {args.command}: error: out of memory (an input larger than this "
              "machine can hold?)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
