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
        "evaluate", help="compare a reconstruction with the ground-truth object",
        description="Register RECON.npz (canvas, coverage, origin) to the truth object "
                    "(objectGuess of --truth), remove the global phase offset, scale the "
                    "amplitude, and write MAE, RMSE, PSNR, SSIM, FRC and phase RMS as JSON.")
    p.add_argument("recon", type=Path, help="reconstruction .npz (as written by stitch/infer)")
    p.add_argument("--truth", type=Path, required=True, help="data .npz with 'objectGuess'")
    p.add_argument("--out", type=Path, required=True, help="evaluation JSON to write")
    p.add_argument("--remove-ramp", action="store_true", help="also remove a linear phase ramp")
    p.add_argument("--min-weight", type=float, default=0.0,
                   help="compare only pixels stitched with at least this fraction of the "
                        "largest weight (default 0: every covered pixel)")
    p.set_defaults(handler=run)
    return p


def run(args: argparse.Namespace) -> int:
    from engine import api

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
