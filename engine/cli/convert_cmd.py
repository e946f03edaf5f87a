"""``ptycho convert IN OUT``: between NPZ, CXI, NeXus (read), mapped HDF5 (read) and
Ptychodus products (docs/formats.md#convert)."""

from __future__ import annotations

import argparse

from engine.cli.inspect_cmd import add_read_args, read_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert", help="convert data or reconstructions between NPZ, CXI and Ptychodus",
        description="Read IN by its content (CXI, NeXus NXcxi_ptycho, Ptychodus product, NPZ, "
                    "or any HDF5 with --mapping) and write OUT in the format its extension "
                    "names (.cxi, .npz, .h5 = Ptychodus product) or --format. Atomic; HDF5 "
                    "patterns are streamed a batch at a time.")
    p.add_argument("src", metavar="IN",
                   help="input file, or a 'ptycho reconstruct' run directory (with --data)")
    p.add_argument("dst", metavar="OUT", help="output file")
    p.add_argument("--format", choices=("npz", "cxi", "ptychodus"), default=None,
                   help="output format (default: from OUT's extension)")
    add_read_args(p)
    p.add_argument("--data", default=None,
                   help="the data file a run directory IN reconstructed (its positions and "
                        "geometry)")
    p.add_argument("--energy-ev", type=float, default=None,
                   help="photon energy in eV, for a dataset in pixel units written as CXI")
    p.add_argument("--distance-m", type=float, default=None,
                   help="sample-detector distance in metres (with --energy-ev)")
    p.add_argument("--detector-pixel-m", type=float, nargs="+", default=None,
                   help="detector pixel in metres: one value, or row and column pitch")
    p.set_defaults(handler=run)


def geometry_from(args: argparse.Namespace):
    given = [args.energy_ev, args.distance_m, args.detector_pixel_m]
    if all(v is None for v in given):
        return None
    from engine.errors import InputError
    from engine.geometry import Geometry, wavelength_from_energy

    if any(v is None for v in given):
        raise InputError("--energy-ev, --distance-m, --detector-pixel-m",
                         "all three together", "only some")
    px = args.detector_pixel_m
    if len(px) not in (1, 2):
        raise InputError("--detector-pixel-m", "one value or two (row, column)",
                         f"{len(px)} values")
    return Geometry(wavelength=wavelength_from_energy(args.energy_ev, "eV"),
                    distance=args.distance_m,
                    detector_pixel=(px[0], px[-1]))


def run(args: argparse.Namespace) -> int:
    from engine import api
    from engine.errors import InputError
    from engine.io.detect import detect
    from engine.io.units import format_length

    extra = {"data": args.data} if args.data else {}
    try:
        out = api.convert(args.src, args.dst, format=args.format,
                          geometry=geometry_from(args), **read_kwargs(args), **extra)
    except InputError as exc:
        if exc.what != "geometry":
            raise
        # the engine names its 'geometry' argument; here three flags give it
        raise InputError("--energy-ev/--distance-m/--detector-pixel-m", exc.expected,
                         exc.got) from None
    kind = detect(out)
    line = f"wrote {out}: {kind}"
    if kind in ("cxi", "npz"):
        ds = api.load_dataset(out, lazy=True, require_diffraction=False, bad_pixels=False)
        line += f", {ds.n} positions, patterns {ds.N}x{ds.N}"
        if ds.pixel_size is not None:
            line += f", object pixel {format_length(ds.pixel_size[0])}"
    print(line)
    return 0
