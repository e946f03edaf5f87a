"""``ptycho inventory``: every artifact of a run with size, SHA-1 and SHA-256."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine.evaluation.inventory import format_inventory, inventory, write_inventory


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "inventory", help="list every file of a run with size and sha1/sha256",
        description="List every file under RUN_DIR (recursively, sorted) with its size, "
                    "SHA-1 and SHA-256; optionally write the list as JSON.")
    p.add_argument("run_dir", type=Path, help="run directory")
    p.add_argument("--out", type=Path, default=None,
                   help="inventory JSON to write (left out of the listing if inside RUN_DIR)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    entries = inventory(args.run_dir, exclude=[args.out] if args.out else None)
    print(format_inventory(entries))
    if args.out is not None:
        write_inventory(args.out, args.run_dir, entries)
        print(f"wrote {args.out}")
    return 0
