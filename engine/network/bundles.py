"""Model bundles: a directory (optionally zipped) that holds everything inference needs.

Layout::

    bundle/
      weights.safetensors   network weights (safetensors: tensors only, no code, no pickle)
      probe.safetensors     the normalised probe as real and imaginary float32 planes
      bundle.json           configuration, intensity_scale, probe_factor, normalisation,
                            N, gridsize, data digest, versions, metrics and the sha256 and
                            size of every other file, plus the sha256 of its own content

Writing goes to a staging sibling directory swapped into place atomically
(:func:`engine.atomic.atomic_directory`), ``bundle.json`` last, so a failed or killed write
leaves the previous bundle or the complete new one, never none. Loading verifies every
digest and refuses a tampered or truncated bundle with a one-line
:class:`~engine.errors.InputError`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import platform
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from engine.atomic import atomic_directory, atomic_open, leftover_directory
from engine.errors import InputError
from engine.rundir import readable_run

FORMAT = "ptycho-bundle/1"
META = "bundle.json"
WEIGHTS = "weights.safetensors"
PROBE = "probe.safetensors"
NORMALISATION = "X = D / s, s = sqrt(mean_j sum D_j^2 / (N/2)^2); P <- P * probe_factor"


@dataclass
class Bundle:
    """A loaded, verified bundle."""

    path: Path
    meta: dict[str, Any]
    weights: dict[str, torch.Tensor]
    probe: np.ndarray

    @property
    def intensity_scale(self) -> float:
        return float(self.meta["intensity_scale"])

    @property
    def N(self) -> int:  # noqa: N802
        return int(self.meta["N"])

    @property
    def gridsize(self) -> int:
        return int(self.meta["gridsize"])


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest_digest(meta: dict[str, Any]) -> str:
    body = {k: v for k, v in meta.items() if k != "manifest_sha256"}
    return _sha256(json.dumps(body, sort_keys=True).encode())


def versions() -> dict[str, str]:
    from engine import __version__

    return {"ptycho-workbench": __version__, "torch": torch.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def _files(weights: dict[str, torch.Tensor], probe: np.ndarray) -> dict[str, bytes]:
    p = np.asarray(probe, dtype=np.complex64)
    probe_t = {"real": torch.from_numpy(p.real.copy()), "imag": torch.from_numpy(p.imag.copy())}
    cpu = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    return {WEIGHTS: st_save(cpu), PROBE: st_save(probe_t)}


def save_bundle(path: str | os.PathLike[str], weights: dict[str, torch.Tensor],
                probe: np.ndarray, meta: dict[str, Any], *, as_zip: bool = False) -> Path:
    """Write a bundle atomically at ``path`` (a directory, or a ``.zip`` file if ``as_zip``).

    ``meta`` must hold at least ``intensity_scale``, ``probe_factor``, ``N`` and ``gridsize``.
    """
    for key in ("intensity_scale", "probe_factor", "N", "gridsize"):
        if key not in meta:
            raise InputError("bundle metadata", f"key '{key}'", f"keys {sorted(meta)}")
    files = _files(weights, probe)
    full = {"format": FORMAT, "normalisation": NORMALISATION, "versions": versions(), **meta,
            "files": {name: {"sha256": _sha256(b), "size": len(b)} for name, b in files.items()}}
    full["manifest_sha256"] = _manifest_digest(full)
    files[META] = (json.dumps(full, indent=2, sort_keys=True) + "\n").encode()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if as_zip:
        with atomic_open(target, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as z:
            for name, data in files.items():
                z.writestr(name, data)
        return target
    with atomic_directory(target) as tmp:
        for name, data in files.items():
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
    return target


def resolve_bundle_path(path: str | os.PathLike[str]) -> Path:
    """A bundle directory, a zipped bundle, or a run directory holding ``bundle/``.

    A run directory that an ``overwrite`` run is replacing (or whose replacement was
    killed) gives its previous, complete run's bundle (:func:`engine.rundir.readable_run`);
    an incomplete run with nothing before it is refused ("incomplete run").
    """
    p = readable_run(path)
    if p.is_file() and zipfile.is_zipfile(p):
        return p
    if (p / META).is_file():
        return p
    if (p / "bundle" / META).is_file():
        return p / "bundle"
    # a write killed between its two renames (file systems that cannot swap directories)
    # leaves the complete bundle under a hidden name until the next write recovers it
    for candidate in (p, p / "bundle"):
        left = leftover_directory(candidate)
        if left is not None and (left / META).is_file():
            return left
    raise InputError(str(p), "a model bundle (a directory with bundle.json, a run directory "
                     "holding bundle/, or a bundle .zip)", "none found")


def _read_files(p: Path) -> dict[str, bytes]:
    if p.is_file():
        try:
            with zipfile.ZipFile(p) as z:
                return {name: z.read(name) for name in z.namelist()}
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(str(p), "a readable bundle zip", type(exc).__name__) from None
    out = {}
    for name in (META, WEIGHTS, PROBE):
        with contextlib.suppress(FileNotFoundError):
            out[name] = (p / name).read_bytes()
    return out


def load_bundle(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Bundle:
    """Load and verify a bundle; any missing, truncated or altered file is an InputError."""
    p = resolve_bundle_path(path)
    files = _read_files(p)
    if META not in files:
        raise InputError(f"bundle {p}", f"a '{META}'", "none")
    try:
        meta = json.loads(files[META])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"bundle {p}: {META}", "valid JSON", "unreadable (truncated?)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"bundle {p}: {META}", f"format '{FORMAT}'",
                         repr(meta.get("format") if isinstance(meta, dict) else meta))
    if meta.get("manifest_sha256") != _manifest_digest(meta):
        raise InputError(f"bundle {p}: {META}", "content matching its manifest_sha256",
                         "a mismatch (edited or corrupted)")
    for name, info in meta.get("files", {}).items():
        data = files.get(name)
        if data is None:
            raise InputError(f"bundle {p}", f"file '{name}'", "missing")
        if len(data) != info["size"] or _sha256(data) != info["sha256"]:
            raise InputError(f"bundle {p}: {name}",
                             f"{info['size']} bytes with sha256 {info['sha256'][:12]}...",
                             f"{len(data)} bytes with sha256 {_sha256(data)[:12]}... "
                             "(tampered or truncated)")
    for name in (WEIGHTS, PROBE):
        if name not in meta.get("files", {}):
            raise InputError(f"bundle {p}: {META}", f"a digest for '{name}'", "none")
    try:
        weights = {k: v.to(device) for k, v in st_load(files[WEIGHTS]).items()}
        planes = st_load(files[PROBE])
    except SafetensorError as exc:
        raise InputError(f"bundle {p}", "valid safetensors files", str(exc)) from None
    probe = (planes["real"].numpy() + 1j * planes["imag"].numpy()).astype(np.complex64)
    return Bundle(p, meta, weights, probe)


def bundle_bytes(bundle_dir: str | os.PathLike[str]) -> io.BytesIO:
    """A zip of a bundle directory in memory (for shipping a bundle as one file)."""
    p = resolve_bundle_path(bundle_dir)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, data in _read_files(p).items():
            z.writestr(name, data)
    buf.seek(0)
    return buf
