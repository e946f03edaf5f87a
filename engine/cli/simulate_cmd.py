"""``ptycho simulate``: write a simulated dataset (docs/conventions.md#data-format,
#forward-model)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli.common import positive_int
from engine.simulation.objects import OBJECTS
from engine.simulation.probes import PROBES
from engine.simulation.scans import SCANS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="simulate a dataset with ground truth")
    p.add_argument("--object", choices=sorted(OBJECTS), default="lines",
                   help="object generator (image: from --amplitude-image/--phase-image)")
    p.add_argument("--probe", choices=sorted(PROBES), default="disk", help="probe generator")
    p.add_argument("--scan", choices=sorted(SCANS), default="raster", help="scan pattern")
    p.add_argument("--n-positions", type=positive_int, default=1024,
                   help="scan positions n")
    p.add_argument("--N", type=positive_int, default=64, help="pattern and probe size")
    p.add_argument("--step", type=float, default=8.0, help="scan step, pixels")
    p.add_argument("--jitter", type=float, default=0.0, help="raster jitter std, pixels")
    p.add_argument("--nphotons", type=float, default=1e9, help="mean counts per pattern")
    p.add_argument("--seed", type=int, default=0, help="random seed (same seed: same data)")
    p.add_argument("--probe-radius", type=float, default=None,
                   help="aperture radius in reciprocal pixels (disk, zone-plate) or Gaussian "
                        "sigma in pixels (default: a size suited to N)")
    p.add_argument("--defocus", type=float, default=1.0,
                   help="out-of-focus strength of the probe (1: the standard distance)")
    p.add_argument("--amplitude-image", default=None, help="PNG for --object image")
    p.add_argument("--phase-image", default=None, help="PNG for --object image")
    p.add_argument("--propagation", choices=("far", "near"), default="far",
                   help="far field (one FFT) or near field (angular spectrum; needs "
                        "--distance, --wavelength or --energy-ev, --detector-pixel)")
    p.add_argument("--distance", type=float, default=None,
                   help="sample-to-detector distance z (z2), metres")
    p.add_argument("--wavelength", type=float, default=None, help="wavelength, metres")
    p.add_argument("--energy-ev", type=float, default=None,
                   help="photon energy in eV (instead of --wavelength)")
    p.add_argument("--detector-pixel", type=float, default=None,
                   help="detector pixel pitch, metres")
    p.add_argument("--focus-distance", type=float, default=None,
                   help="near field: focus-to-sample distance z1 of a divergent beam, metres "
                        "(Fresnel scaling; default: a flat wavefront)")
    p.add_argument("--from-npz", default=None,
                   help="take object, probe and positions from this NPZ (e.g. an experiment)")
    p.add_argument("--backend", default="numpy",
                   help="backend of the forward model (numpy, torch or a plugged-in one)")
    p.add_argument("--out", required=True, help="output .npz")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from engine import api
    from engine.cli.progress import ProgressBar

    overrides = {}
    N = args.N
    wavelength = args.wavelength
    if args.energy_ev is not None:
        from engine.errors import InputError
        from engine.geometry import wavelength_from_energy

        if wavelength is not None:
            raise InputError("--energy-ev", "either --wavelength or --energy-ev", "both")
        wavelength = wavelength_from_energy(args.energy_ev, "eV")
    if args.from_npz:
        src = api.load_dataset(args.from_npz, require_diffraction=False)
        if src.object is None:
            from engine.errors import InputError

            raise InputError(f"--from-npz {args.from_npz}", "a file with 'objectGuess'")
        overrides = {"object_array": src.object, "probe_array": src.probe,
                     "positions": src.positions}
        N = src.N
    config = api.SimulationConfig(
        object=args.object, probe=args.probe, scan=args.scan,
        n_positions=len(overrides["positions"]) if overrides else args.n_positions,
        N=N, step=args.step, jitter=args.jitter, nphotons=args.nphotons, seed=args.seed,
        probe_radius=args.probe_radius, defocus=args.defocus,
        amplitude_image=args.amplitude_image, phase_image=args.phase_image,
        propagation=args.propagation, wavelength=wavelength, distance=args.distance,
        detector_pixel=args.detector_pixel, focus_distance=args.focus_distance)
    bar = ProgressBar()
    ds = api.simulate(config, backend=args.backend, emit=bar, **overrides)
    bar.close()
    if args.from_npz:
        # where the object, probe and positions came from, so the file can be traced back
        from dataclasses import replace

        from engine.evaluation.inventory import file_digests

        size, _, sha256 = file_digests(args.from_npz)
        ds = replace(ds, metadata={**ds.metadata, "source": {
            "file": str(Path(args.from_npz).resolve()), "sha256": sha256, "size": size,
            "taken": ["objectGuess", "probeGuess", "xcoords", "ycoords"]}})
    api.save_dataset(args.out, ds)
    H, W = ds.object.shape
    print(f"wrote {args.out}: {ds.n} patterns {ds.N}x{ds.N}, object {H}x{W}, "
          f"mean counts {float((ds.diffraction.astype('f8') ** 2).sum((1, 2)).mean()):.4g}"
          + (f", {ds.geometry.propagation} field" if ds.geometry is not None else ""),
          file=sys.stdout)
    return 0
