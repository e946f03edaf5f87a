"""``ptycho reconstruct``: ePIE, rPIE or LSQ-ML from a dataset, optionally network-initialised.

Examples
--------
``ptycho reconstruct data.npz --method lsqml --iterations 50 --batch-size 64 --backend torch
--device auto --probe-modes 2 --update-probe --init runs/a --out runs/e``
"""

from __future__ import annotations

import argparse
import sys

from engine.cli.common import add_bad_pixel_flag, bad_pixels_from
from engine.errors import InputError
from engine.events import Epoch, Event, Finished, RunStarted
from engine.rundir import check_writable


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reconstruct", help="iterative reconstruction (ePIE, rPIE, LSQ-ML)",
        description="Reconstruct object and probe with an iterative solver; writes recon.npz "
                    "(canvas layout), probe.npz, history.json, options.json and PNGs.")
    p.add_argument("data", help="dataset .npz (docs/conventions.md#data-format)")
    add_bad_pixel_flag(p)
    p.add_argument("--method", choices=("epie", "rpie", "lsqml"), default="lsqml",
                   help="solver (docs/iterative.md)")
    p.add_argument("--iterations", type=int, default=50, help="epochs (default 50)")
    p.add_argument("--batch-size", type=int, default=64, help="positions per update; 1 = "
                   "sequential")
    p.add_argument("--batch-order", choices=("random", "sequential"), default="random",
                   help="random: a seeded shuffle every epoch")
    p.add_argument("--backend", default="numpy",
                   help="numpy (the float64 reference), torch or a plugged-in backend")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:k] (torch)")
    p.add_argument("--seed", type=int, default=0, help="seed of the batch order")
    p.add_argument("--probe-modes", type=int, default=1, help="incoherent probe modes")
    p.add_argument("--update-probe", action="store_true", help="refine the probe")
    p.add_argument("--no-object-update", action="store_true", help="keep the object fixed")
    p.add_argument("--probe-update-start", type=int, default=0,
                   help="first epoch (0-based) that updates the probe")
    p.add_argument("--no-probe-power-constraint", action="store_true",
                   help="do not rescale the probe to the measured power after its updates")
    p.add_argument("--alpha", type=float, default=None, help="ePIE/rPIE object step (α)")
    p.add_argument("--beta", type=float, default=None, help="ePIE/rPIE probe step (β)")
    p.add_argument("--batch-normalisation", choices=("overlap", "peak"), default=None,
                   help="ePIE batched object step: overlap (stable, default) or peak "
                        "(pty-chi's parallel ePIE)")
    p.add_argument("--noise", choices=("gaussian", "poisson"), default=None,
                   help="LSQ-ML noise model (default gaussian)")
    add_position_arguments(p)
    p.add_argument("--torch-threads", type=int, default=0,
                   help="torch intra-op CPU threads (0: torch's default; 1 is often faster "
                        "on a busy machine)")
    p.add_argument("--devices", type=int, default=1,
                   help="ranks (processes) to run on: N > 1 spawns N, gloo with --device cpu "
                        "(--torch-threads each), NCCL with cuda, one GPU each; each reads only "
                        "its share of the positions (docs/iterative.md#several-devices)")
    p.add_argument("--propagation", choices=("auto", "far", "near"), default="auto",
                   help="propagation model: auto (the data's geometry), far or near field")
    p.add_argument("--probe-init", default="given",
                   help="starting probe: given (the data's probeGuess), data (from the mean "
                        "pattern), disk, gaussian, zoneplate[:radius=R,defocus=Z] or "
                        "file:PATH (a CXI/NPZ file, a run or bundle directory)")
    p.add_argument("--init", default="flat",
                   help="'flat', a canvas .npz, or a model bundle directory (network init)")
    p.add_argument("--checkpoint-every", type=int, default=10,
                   help="epochs between checkpoints in OUT/checkpoint (default 10)")
    p.add_argument("--resume", default=None, help="checkpoint directory to continue from")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress on stderr")
    p.add_argument("--out", required=True, help="run directory to write")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in --out (refused without it)")
    p.set_defaults(handler=run)


def add_position_arguments(p: argparse.ArgumentParser) -> None:
    """The position-correction flags (docs/iterative.md#position-correction)."""
    p.add_argument("--position-correction", action="store_true",
                   help="correct the scan positions (gradient of the data misfit with "
                        "respect to each shift)")
    p.add_argument("--affine", action="store_true",
                   help="with --position-correction: constrain the positions to an affine "
                        "map (scale, rotation, shear, offset) of the given ones")
    p.add_argument("--position-start", type=int, default=None,
                   help="first epoch (0-based) that moves positions (default 2)")
    p.add_argument("--position-step-limit", type=float, default=None,
                   help="largest move of a position per epoch, px (default 0.5)")
    p.add_argument("--affine-residual-limit", type=float, default=None,
                   help="with --affine: residual kept per position, px (default 0: the "
                        "pure affine map)")


def position_values(args: argparse.Namespace) -> dict:
    """The solver option values of the position-correction flags."""
    if not args.position_correction:
        for flag in ("affine", "position_start", "position_step_limit",
                     "affine_residual_limit"):
            if getattr(args, flag) is not None and getattr(args, flag) is not False:
                raise InputError(f"--{flag.replace('_', '-')}", "only with "
                                 "--position-correction", "position correction off")
        return {}
    if args.affine_residual_limit is not None and not args.affine:
        raise InputError("--affine-residual-limit", "only with --affine", "no --affine")
    values: dict = {"position_correction": True, "position_affine": bool(args.affine)}
    for flag in ("position_start", "position_step_limit", "affine_residual_limit"):
        if getattr(args, flag) is not None:
            values[flag] = getattr(args, flag)
    return values


def options_from_args(args: argparse.Namespace):
    """The solver options of the parsed command line."""
    from engine.iterative import options_for

    values = {
        "iterations": args.iterations,
        "batch_size": args.batch_size,
        "batch_order": args.batch_order,
        "seed": args.seed,
        "probe_modes": args.probe_modes,
        "update_object": not args.no_object_update,
        "update_probe": args.update_probe or args.probe_modes > 1,
        "probe_update_start": args.probe_update_start,
        "probe_power_constraint": not args.no_probe_power_constraint,
        "propagation": args.propagation,
        "probe_init": args.probe_init,
        **position_values(args),
    }
    if args.method in ("epie", "rpie"):
        if args.noise is not None:
            raise InputError("--noise", "only with --method lsqml", args.method)
        values.update({k: getattr(args, k) for k in ("alpha", "beta")
                       if getattr(args, k) is not None})
        if args.batch_normalisation is not None:
            if args.method != "epie":
                raise InputError("--batch-normalisation", "only with --method epie",
                                 args.method)
            values["batch_normalisation"] = args.batch_normalisation
    else:
        if args.alpha is not None or args.beta is not None:
            raise InputError("--alpha/--beta", "only with --method epie or rpie", "lsqml")
        if args.batch_normalisation is not None:
            raise InputError("--batch-normalisation", "only with --method epie", "lsqml")
        if args.noise is not None:
            values["noise"] = args.noise
    return options_for(args.method, **values)


def _printer(quiet: bool):
    def show(event: Event) -> None:
        if quiet:
            return
        if isinstance(event, RunStarted):
            c = event.config
            ranks = f", {c['devices']} ranks" if c.get("devices", 1) > 1 else ""
            print(f"reconstruct: {c['method']} on {c['backend']} ({c['device']}{ranks}), "
                  f"n={c['n']}, N={c['N']}, grid {c['grid'][0]}x{c['grid'][1]}",
                  file=sys.stderr)
        elif isinstance(event, Epoch):
            m = event.metrics
            moved = (f", positions moved {m['positions_rms_change']:.3f} px RMS"
                     if "positions_rms_change" in m else "")
            print(f"epoch {event.epoch}: error {m['error']:.4e}, {m['patterns_per_s']:.0f} "
                  f"patterns/s{moved}", file=sys.stderr)
        elif isinstance(event, Finished):
            print(f"done: {event.summary['epochs']} epochs", file=sys.stderr)
    return show


def run(args: argparse.Namespace) -> int:
    from engine import api

    options = options_from_args(args)
    if args.checkpoint_every < 1:
        raise InputError("--checkpoint-every", "an integer >= 1", str(args.checkpoint_every))
    if args.torch_threads < 0:
        raise InputError("--torch-threads", "an integer >= 0", str(args.torch_threads))
    if args.devices < 1:
        raise InputError("--devices", "an integer >= 1", str(args.devices))
    if args.torch_threads and args.backend == "torch":
        import torch

        torch.set_num_threads(args.torch_threads)
    out = check_writable(args.out, directory=True)
    # several ranks: HDF5 patterns stay in the file, each rank reads its own share
    dataset = api.load_dataset(args.data, bad_pixels=bad_pixels_from(args),
                               **({"lazy": True} if args.devices > 1 else {}))
    result = api.reconstruct(dataset, options, init=args.init, backend=args.backend,
                             device=args.device, emit=_printer(args.quiet), out=out,
                             overwrite=args.overwrite, checkpoint_every=args.checkpoint_every,
                             resume=args.resume, snapshot_every=0,
                             **({} if args.devices == 1 else
                                {"devices": args.devices,
                                 "threads": args.torch_threads or None}))
    print(f"wrote {out}/recon.npz, probe.npz, history.json "
          f"(final error {result.errors[-1]:.4e})")
    if result.positions is not None:
        last = result.history[-1] if result.history else {}
        print(f"positions corrected: {last.get('positions_rms_shift', 0.0):.3f} px RMS from "
              f"the given ones (recon.npz: positions, initial_positions)")
    return 0
