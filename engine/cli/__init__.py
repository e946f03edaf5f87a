"""The ``ptycho`` command line.

Each sub-command lives in its own module of this package exposing ``register(subparsers)``;
add a module name to ``COMMANDS`` to add a command. Bad input ends with a one-line message
on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import import_module

from engine.errors import PtychoError, os_reason

COMMANDS = (
    "simulate",
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
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ptycho", description="Ptychography workbench")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        import_module(f"{__name__}.{name.replace('-', '_')}_cmd").register(sub)
    return parser


# The outputs of each command (argument, is a directory): checked writable before any work
# is done, so a bad --out costs nothing (train, infer and reconstruct hold theirs as runs)
OUTPUTS = {
    "simulate": (("out", False),),
    "stitch": (("out", False),),
    "stats": (("out", False), ("grid_png", False)),
    "compare": (("out", False),),
    "evaluate": (("out", False),),
    "inventory": (("out", False),),
    "demo": (("out", True),),
    "train": (("out", True),),
    "infer": (("out", True),),
    "reconstruct": (("out", True),),
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        check_outputs(args)
        return int(args.handler(args) or 0)
    except PtychoError as exc:
        from engine.cli.common import cli_message, flags_of

        print(f"ptycho {args.command}: error: {cli_message(exc, flags_of(parser, args.command))}",
              file=sys.stderr)
        return 2
    except OSError as exc:  # any other file-system failure: the path and the reason
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"ptycho {args.command}: error: {where}{os_reason(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ptycho {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
