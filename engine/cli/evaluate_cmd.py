"""``ptycho evaluate``: a reconstruction against the ground truth
(docs/conventions.md#evaluation-metrics)."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate", help="compare a reconstruction with the ground-truth object, or measure "
                         "the resolution without one (--halves)",
        description="Register RECON.npz (canvas, coverage, origin) to the truth object "
                    "(objectGuess of --truth), remove the global phase offset, scale the "
                    "amplitude, and write MAE, RMSE, PSNR, SSIM, FRC and phase RMS as JSON. "
                    "With --halves DATA instead: reconstruct two interleaved halves of the "
                    "scan, register them and read the resolution off their Fourier ring "
                    "correlation at the half-bit threshold (docs/metrics.md#frc); writes the "
                    "curve as JSON (--out) and the plot as PNG beside it.")
    p.add_argument("recon", type=Path, nargs="?", default=None,
                   help="reconstruction .npz (as written by stitch/infer/reconstruct)")
    p.add_argument("--truth", type=Path, default=None,
                   help="data .npz with 'objectGuess' (required with RECON)")
    p.add_argument("--out", type=Path, required=True,
                   help="evaluation JSON to write (--halves: the FRC curve; the plot goes to "
                        "the same name with .png)")
    p.add_argument("--halves", type=Path, default=None, metavar="DATA",
                   help="dataset .npz: half-split FRC resolution without ground truth")
    p.add_argument("--split", choices=("checkerboard", "alternate"), default="checkerboard",
                   help="--halves: checkerboard of the raster cells (default) or alternate "
                        "positions along the scan path")
    p.add_argument("--method", choices=("epie", "rpie", "lsqml"), default="lsqml",
                   help="--halves: the solver of both halves")
    p.add_argument("--iterations", type=int, default=50, help="--halves: epochs (default 50)")
    p.add_argument("--batch-size", type=int, default=64, help="--halves: positions per update")
    p.add_argument("--update-probe", action="store_true", help="--halves: refine the probe")
    p.add_argument("--backend", default="numpy", help="--halves: numpy or torch")
    p.add_argument("--device", default="auto", help="--halves: auto, cpu or cuda[:k]")
    from engine.cli.reconstruct_cmd import add_position_arguments

    add_position_arguments(p)
    p.add_argument("--remove-ramp", action="store_true", help="also remove a linear phase ramp")
    p.add_argument("--min-weight", type=float, default=0.0,
                   help="compare only pixels stitched with at least this fraction of the "
                        "largest weight (default 0: every covered pixel)")
    p.set_defaults(handler=run)
    return p


def run_halves(args: argparse.Namespace) -> int:
    """``--halves DATA``: the half-split FRC resolution."""
    from engine import api
    from engine.cli.reconstruct_cmd import position_values
    from engine.errors import InputError
    from engine.iterative import options_for
    from engine.rundir import check_writable

    if args.recon is not None or args.truth is not None:
        raise InputError("--halves", "either --halves DATA or RECON with --truth",
                         "both")
    options = options_for(args.method, iterations=args.iterations,
                          batch_size=args.batch_size, update_probe=args.update_probe,
                          **position_values(args))
    out = check_writable(args.out, directory=False)
    png = out.with_suffix(".png")
    data = api.load_dataset(args.halves)
    result = api.resolution(data, options, split=args.split, backend=args.backend,
                            device=args.device)
    result.save(out, png)
    nm = "" if result.resolution_nm is None else f" = {result.resolution_nm:.4g} nm"
    limit = " (the curve never fell below the threshold: Nyquist)" \
        if result.reached_nyquist else ""
    print(f"half-split FRC ({args.split}, {result.halves[0].size} + {result.halves[1].size} "
          f"positions): resolution {result.resolution_px:.3f} px{nm} at the half-bit "
          f"threshold, {result.crossing:.4f} cycles/px{limit}")
    print(f"wrote {out} and {png}")
    return 0


def run(args: argparse.Namespace) -> int:
    from engine import api
    from engine.errors import InputError

    if args.halves is not None:
        return run_halves(args)
    if args.recon is None:
        raise InputError("evaluate", "RECON.npz with --truth DATA, or --halves DATA",
                         "neither")
    if args.truth is None:
        raise InputError("--truth", "a data .npz with 'objectGuess' to score RECON against "
                         "(or --halves DATA, without ground truth)", "none")

    # the same JSON the workbench writes into a run directory (one code path)
    figures = api.write_evaluation(api.load_canvas(args.recon), api.load_truth(args.truth),
                                   args.out, recon=str(args.recon), truth_label=str(args.truth),
                                   remove_ramp=args.remove_ramp, min_weight=args.min_weight)
    result = {"recon": str(args.recon), "truth": str(args.truth),
              "remove_ramp": bool(args.remove_ramp), **figures}
    print(format_table(result))
    print(f"wrote {args.out}")
    warn_registration(result, "evaluate")
    return 0


def warn_registration(result: dict[str, Any], command: str) -> None:
    """A warning on stderr when the registration cannot be trusted (the figures then
    compare misplaced images)."""
    reg = result.get("alignment", {}).get("registration", {})
    if reg.get("ok") is False:
        print(f"ptycho {command}: warning: registration failed: {reg.get('reason')}; the "
              f"figures compare misplaced images", file=sys.stderr)


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return f"{value:.{digits}g}"


def format_table(result: dict[str, Any]) -> str:
    """A short two-column (amplitude, phase) table of an :func:`evaluate_canvas` result."""
    amp, ph = result.get("amplitude") or {}, result.get("phase") or {}

    def frc(section: dict[str, Any], key: str) -> Any:
        return (section.get("frc") or {}).get(key)

    rows = [
        ("MAE", amp.get("mae"), ph.get("mae")),
        ("RMSE", amp.get("rmse"), ph.get("rmse")),
        ("PSNR (dB)", amp.get("psnr"), ph.get("psnr")),
        ("SSIM", amp.get("ssim"), ph.get("ssim")),
        ("Pearson r", amp.get("pearson_r"), ph.get("pearson_r")),
        ("FRC 1/7 (px)", frc(amp, "resolution_px_1_7"), frc(ph, "resolution_px_1_7")),
        ("FRC 1/2-bit (px)", frc(amp, "resolution_px_half_bit"),
         frc(ph, "resolution_px_half_bit")),
        ("phase RMS (rad)", None, ph.get("rms_error_rad")),
    ]
    lines = [f"{'figure':<18}{'amplitude':>12}{'phase':>12}"]
    lines += [f"{name:<18}{_fmt(a):>12}{_fmt(b):>12}" for name, a, b in rows]
    al = result.get("alignment", {})
    shift = al.get("registration", {}).get("shift_px", [0.0, 0.0])
    lines.append(f"shift (dy, dx) {shift[0]:+.2f}, {shift[1]:+.2f} px; phase offset "
                 f"{_fmt(al.get('phase_offset_rad'))} rad; {al.get('n_pixels', 0)} pixels")
    reg = al.get("registration", {})
    if reg.get("ok") is False:
        lines.append(f"REGISTRATION FAILED: {reg.get('reason')}")
    return "\n".join(lines)
