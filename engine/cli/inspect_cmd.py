"""``ptycho inspect FILE``: what a data file holds and what is wrong with it
(docs/formats.md#inspect)."""

from __future__ import annotations

import argparse
from typing import Any

from engine.cli.common import bad_pixels_from

ORDERS = ("xy", "yx")
ENERGY_UNITS = ("J", "eV", "keV")


def add_read_args(p: argparse.ArgumentParser) -> None:
    """The options that settle what a data file leaves open (shared with convert)."""
    p.add_argument("--mapping", default=None,
                   help="TOML mapping file for an HDF5 layout of your own (docs/formats.md)")
    p.add_argument("--energy-unit", choices=ENERGY_UNITS, default=None,
                   help="the unit of the file's energy, where it states none or a wrong one")
    p.add_argument("--translation-order", choices=ORDERS, default="xy",
                   help="column order of the file's translations (CXI specification: xy)")
    p.add_argument("--no-bad-pixels", action="store_true",
                   help="do not look for saturated, hot and dead pixels on load (done by "
                        "default for CXI, NeXus and mapped HDF5 files)")


def read_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"mapping": args.mapping, "energy_unit": args.energy_unit,
            "translation_order": args.translation_order,
            "bad_pixels": bad_pixels_from(args)}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "inspect", help="summarise a data file (CXI, NeXus, Ptychodus, NPZ, mapped HDF5)",
        description="Format, shapes, dtype, energy and wavelength, distance, detector and "
                    "object pixel, scan extent, step and overlap, photons per pattern, masked "
                    "and saturated pixels, and warnings. Patterns are streamed, never loaded "
                    "whole. Lengths in nm or µm. A detector's bad pixels are found on load "
                    "and counted; the provenance steps are listed. To centre, crop, bin, "
                    "dark- or flat-correct the data, run 'ptycho prepare FILE --out "
                    "prepared.npz' and inspect its output.")
    p.add_argument("file", help="the data file")
    add_read_args(p)
    p.add_argument("--json", default=None, help="also write the report as JSON here")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine import api

    report = api.inspect(args.file, **read_kwargs(args))
    for line in report.lines():
        print(line)
    if args.json:
        from engine.atomic import write_json

        write_json(args.json, report.to_dict())
    return 0
