"""Argument helpers shared by the sub-commands."""

from __future__ import annotations

import argparse

from engine.physics.grouping import GroupingConfig
from engine.physics.stitching import WINDOWS, StitchConfig


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
