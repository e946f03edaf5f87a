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

from engine.errors import PtychoError

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
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ptycho", description="Ptychography workbench")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        import_module(f"{__name__}.{name.replace('-', '_')}_cmd").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    try:
        return int(args.handler(args) or 0)
    except PtychoError as exc:
        print(f"ptycho {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ptycho {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
