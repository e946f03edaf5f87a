"""``ptycho bench SUITE``: run a benchmark suite and write its JSON result."""

from __future__ import annotations

import argparse
import json
import sys
from importlib import import_module

from engine.atomic import write_json
from engine.bench import SUITES
from engine.cli.progress import ProgressBar
from engine.rundir import check_writable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help=f"benchmarks, results as JSON (suites: {', '.join(SUITES)})",
                       add_help=False)
    p.add_argument("suite", choices=sorted(SUITES), help="benchmark suite")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="suite options (SUITE --help)")
    p.set_defaults(handler=run)


def suite_parser(name: str) -> argparse.ArgumentParser:
    """The suite's own parser; suites are imported only when run (they load torch)."""
    module = import_module(SUITES[name])
    sp = argparse.ArgumentParser(prog=f"ptycho bench {name}",
                                 description=(module.__doc__ or "").strip().split("\n")[0])
    module.add_arguments(sp)
    sp.add_argument("--out", required=True, help="result JSON")
    sp.set_defaults(suite_module=module)
    return sp


def run(args: argparse.Namespace) -> int:
    opts = suite_parser(args.suite).parse_args(args.rest)
    check_writable(opts.out, directory=False, field="--out")  # before the measuring, not after
    bar = ProgressBar(delay=0.0)
    result = opts.suite_module.run(opts, bar)
    bar.close()
    write_json(opts.out, result)
    json.dump(result.get("summary", result), sys.stdout, indent=2)
    print(f"\nwrote {opts.out}")
    return 0
