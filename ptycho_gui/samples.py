"""Sample datasets for File › Open Sample: simulated on the fly, nothing is shipped.

Examples
--------
>>> ds = make_sample("lines", n_positions=16, N=32)
>>> ds.n, ds.N
(16, 32)
"""

from __future__ import annotations

from engine import api

SAMPLES = {
    "lines": "Lines: sharp amplitude and phase edges",
    "asym": "Asym: an asymmetric test object (shows flips and transposes)",
    "grf": "GRF: a Gaussian random field, smooth texture",
    "siemens": "Siemens star, near field (angular spectrum: 0.1 nm, 0.2 m, 1 µm pixels)",
}
# the near-field samples' geometry: flat wavefront, pixel Fresnel number p²/(λz) = 0.05
NEAR_FIELD = {"siemens": {"propagation": "near", "wavelength": 1e-10, "distance": 0.2,
                          "detector_pixel": 1e-6}}


def make_sample(name: str, *, n_positions: int = 256, N: int = 64, seed: int = 0) -> api.Dataset:
    """Simulate the ``name`` sample: a raster scan of ``n_positions`` at step N/8, 1e6 photons."""
    if name not in SAMPLES:
        from engine.errors import InputError

        raise InputError("sample", f"one of {sorted(SAMPLES)}", repr(name))
    ds = api.simulate(api.SimulationConfig(object=name, probe="disk", scan="raster",
                                           n_positions=n_positions, N=N, step=N / 8,
                                           nphotons=1e6, seed=seed,
                                           **NEAR_FIELD.get(name, {})))
    ds.metadata["name"] = name
    return ds
