"""``ptycho inventory``: every artifact of a run with size, SHA-1 and SHA-256.

What cannot be read as a file (a dangling link, a FIFO) is listed as unreadable. A run that
an ``--overwrite`` run is replacing is listed as the previous, complete run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from engine.evaluation.inventory import (
    check_digests,
    format_inventory,
    format_mismatch,
    inventory,
    write_inventory,
)

# the exit status of --check when a digest does not match (2 is bad input)
EXIT_MISMATCH = 1


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "inventory", help="list every file of a run with size and sha1/sha256",
        description="List every file under RUN_DIR (recursively, sorted) with its size, "
                    "SHA-1 and SHA-256; optionally write the list as JSON.")
    p.add_argument("run_dir", type=Path, help="run directory")
    p.add_argument("--out", type=Path, default=None,
                   help="inventory JSON to write (left out of the listing if inside RUN_DIR)")
    p.add_argument("--check", action="store_true",
                   help="verify every digest the run records (bundle/bundle.json, checkpoint "
                        "manifests, bundle.zip, inventory JSONs inside RUN_DIR) and what its "
                        "bundles and checkpoints say (the loaders' field, range, shape and "
                        "finite-value checks): one line per problem, exit status "
                        f"{EXIT_MISMATCH} on any")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.check:
        return check(args.run_dir)
    entries = inventory(args.run_dir, exclude=[args.out] if args.out else None)
    print(format_inventory(entries))
    if args.out is not None:
        write_inventory(args.out, args.run_dir, entries)
        print(f"wrote {args.out}")
    return 0


def schema_problems(run_dir: Path, damaged: tuple[str, ...] = ()) -> tuple[int, list[str]]:
    """The loaders' own checks (fields, ranges, shapes, finite arrays) over every bundle
    and checkpoint under ``run_dir``: (how many were checked, one line per refusal).
    Those holding a file in ``damaged`` (digest mismatches, already reported) are not
    checked again."""
    from engine.errors import InputError
    from engine.rundir import readable_run

    root = readable_run(run_dir)
    checks: list[tuple[Path, Any]] = []
    for meta in sorted(root.rglob("bundle.json")):
        checks.append((meta.parent, _load_bundle))
    for z in sorted(root.rglob("*.zip")):
        checks.append((z, _load_bundle))
    for state in sorted(root.rglob("state.json")):
        if (state.parent / "model.safetensors").exists():
            checks.append((state.parent, _verify_training))
    for ck in sorted(root.rglob("checkpoint.npz")):
        checks.append((ck.parent, _load_solver))
    problems = []
    for where, check in checks:
        rel = where.relative_to(root).as_posix()
        if any(part.startswith(".") for part in where.relative_to(root).parts):
            continue  # leftovers of interrupted writes are not the run's files
        if any(f == rel or f.startswith(f"{rel}/") or f.startswith(f"{rel}:")
               for f in damaged):
            continue
        try:
            check(where)
        except InputError as exc:
            problems.append(f"INVALID {exc}")
    return len(checks), problems


def _load_bundle(path: Path) -> None:
    from engine.network.bundles import load_bundle

    load_bundle(path)


def _verify_training(path: Path) -> None:
    from engine.network.checkpoint import verify_checkpoint

    verify_checkpoint(path)


def _load_solver(path: Path) -> None:
    from engine.iterative.state import load_checkpoint

    load_checkpoint(path)


def check(run_dir: Path) -> int:
    result = check_digests(run_dir)
    for m in result["mismatches"]:
        print(format_mismatch(m), file=sys.stderr)
    n_files, problems = schema_problems(run_dir, tuple(m["file"] for m in result["mismatches"]))
    for line in problems:
        print(line, file=sys.stderr)
    n_bad = len(result["mismatches"]) + len(problems)
    where = ", ".join(result["manifests"]) or "no manifest found"
    print(f"checked {result['checked']} digests ({where}) and the fields of {n_files} "
          "bundles and checkpoints: "
          + (f"{n_bad} mismatch{'es' if n_bad != 1 else ''}" if n_bad else "all match"))
    return EXIT_MISMATCH if n_bad else 0
