"""``ptycho bench SUITE``: run a benchmark suite and write its JSON result."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import json
import sys
from importlib import import_module

from engine.bench import SUITES
from engine.cli.common import RawDescriptionHelpFormatter


def suite_summary(name: str) -> str:
    """The first line of a suite module's docstring, read without importing it (suites load
    torch)."""
    spec = importlib.util.find_spec(SUITES[name])
    if spec is None or spec.origin is None:
        return ""
    with open(spec.origin, encoding="utf-8") as fh:
        doc = ast.get_docstring(ast.parse(fh.read())) or ""
    return doc.strip().split("\n")[0]


def register(sub: argparse._SubParsersAction) -> None:
    suites = "\n".join(f"  {name:<12} {suite_summary(name)}" for name in sorted(SUITES))
    p = sub.add_parser(
        "bench", help=f"benchmarks, results as JSON (suites: {', '.join(SUITES)})",
        formatter_class=RawDescriptionHelpFormatter,
        description="Run a benchmark suite and write its JSON result (recorded ones are in\n"
                    "benchmarks/results/, read in benchmarks/RESULTS.md). Suites:\n" + suites
                    + "\n\n'ptycho bench SUITE --help' lists a suite's options.")
    p.add_argument("suite", choices=sorted(SUITES), help="benchmark suite")
    p.add_argument("rest", nargs=argparse.REMAINDER,
                   help="the suite's options (ptycho bench SUITE --help)")
    p.set_defaults(handler=run)


def suite_parser(name: str) -> argparse.ArgumentParser:
    """The suite's own parser; suites are imported only when run (they load torch)."""
    module = import_module(SUITES[name])
    from engine.cli.common import Parser

    sp = Parser(prog=f"ptycho bench {name}",
                                 description=(module.__doc__ or "").strip().split("\n")[0])
    module.add_arguments(sp)
    sp.add_argument("--out", required=True, help="result JSON")
    sp.set_defaults(suite_module=module)
    return sp


def run(args: argparse.Namespace) -> int:
    from engine.atomic import write_json
    from engine.cli.progress import ProgressBar
    from engine.rundir import check_writable


    opts = suite_parser(args.suite).parse_args(args.rest)
    check_writable(opts.out, directory=False)  # before the measuring, not after
    bar = ProgressBar(delay=0.0)
    result = opts.suite_module.run(opts, bar)
    bar.close()
    write_json(opts.out, result)
    json.dump(result.get("summary", result), sys.stdout, indent=2)
    print(f"\nwrote {opts.out}")
    return 0
