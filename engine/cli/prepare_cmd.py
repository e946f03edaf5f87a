"""``ptycho prepare``: bad pixels, dark, flat, centre, crop and bin a dataset
(docs/conventions.md#preparation, #detector-mask), written as a new dataset whose provenance
lists every step."""

from __future__ import annotations

import argparse

from engine.cli.common import positive_int
from engine.cli.inspect_cmd import add_read_args, read_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="mask bad pixels; dark, flat, centre, crop, bin a "
                       "dataset", description="Prepare measured frames for the methods. "
                       "Order: bad pixels found on the raw frames, then dark, flat, clip, "
                       "centre, crop, bin; each step is recorded in the output's "
                       "metadata['provenance'].")
    p.add_argument("data", help="dataset file (docs/conventions.md#data-format)")
    p.add_argument("--out", required=True, help="output dataset .npz")
    p.add_argument("--centre", default="none", metavar="none|com|ROW,COL",
                   help="beam centre: the detector's middle, the mean pattern's centre of "
                        "mass, or a given (row, col) in detector pixels")
    p.add_argument("--N", type=positive_int, default=None,
                   help="prepared pattern size (default: the detector's / --bin)")
    p.add_argument("--bin", type=positive_int, default=1, help="detector pixels per side "
                   "summed into one")
    p.add_argument("--dark", default=None, help="dark frame in counts (.npy, detector size)")
    p.add_argument("--flat", default=None, help="flat field, relative gain (.npy)")
    p.add_argument("--no-clip", action="store_true", help="keep negative counts after --dark")
    p.add_argument("--bad-pixels", action="store_true",
                   help="find saturated, hot and dead pixels and mask them (CXI, NeXus and "
                        "mapped HDF5 files: done on load anyway, with the file's saturation)")
    p.add_argument("--saturation", type=float, default=None,
                   help="the detector's saturation in counts (with --bad-pixels; default: a "
                        "count at the stack's maximum in 3 or more frames)")
    add_read_args(p)
    p.set_defaults(handler=run)


def _centre(text: str) -> dict:
    from engine.errors import InputError

    if text in ("none", "com"):
        return {"centre": text}
    try:
        row, col = (float(v) for v in text.split(","))
    except ValueError:
        raise InputError("--centre", "none, com or ROW,COL (two numbers)", repr(text)) from None
    return {"centre": "given", "centre_at": (row, col)}


def _frame(path: str | None, what: str):
    if path is None:
        return None
    import numpy as np

    from engine.errors import InputError

    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"--{what} {path}", "a readable .npy array", type(exc).__name__) \
            from None
    if not isinstance(a, np.ndarray):
        raise InputError(f"--{what} {path}", "a .npy array (not an .npz archive)")
    return a


def run(args: argparse.Namespace) -> int:
    from engine import api
    from engine.physics.badpixels import BadPixelOptions

    options = api.PrepareOptions(N=args.N, bin=args.bin, clip_negative=not args.no_clip,
                                 **_centre(args.centre))
    dark, flat = _frame(args.dark, "dark"), _frame(args.flat, "flat")
    from engine.errors import InputError

    if args.bad_pixels and args.no_bad_pixels:
        raise InputError("--bad-pixels, --no-bad-pixels", "one of them", "both")
    read = read_kwargs(args)
    if args.bad_pixels:  # found below, with --saturation, rather than on load
        read["bad_pixels"] = False
    data = api.load_dataset(args.data, **read)
    if args.bad_pixels:
        data, report = api.find_bad_pixels(data, BadPixelOptions(saturation=args.saturation))
        print(report.summary())
    elif args.saturation is not None:
        print("ptycho prepare: --saturation applies with --bad-pixels only; ignored")
    out = api.prepare(data, options, dark=dark, flat=flat)
    for step in out.metadata.get("provenance", [])[len(data.metadata.get("provenance", [])):]:
        print(f"{step['step']}: {step['parameters']} -> {step['result']}")
    api.save_dataset(args.out, out)
    masked = 0 if out.pixel_mask is None else int((~out.pixel_mask).sum())
    print(f"wrote {args.out}: {out.n} patterns of {out.N}x{out.N}, {masked} masked pixel(s)")
    return 0
