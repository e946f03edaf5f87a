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
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from engine import schema
from engine.atomic import atomic_directory, atomic_open, leftover_directory
from engine.errors import InputError
from engine.network.legacy_bundle import refuse_tensorflow_bundle
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
    bad = [k for k, v in weights.items() if v.is_floating_point()
           and not bool(torch.isfinite(v).all())]
    if bad or not np.isfinite(np.asarray(probe)).all():
        raise InputError("bundle weights" if bad else "bundle probe", "finite values",
                         f"NaN or infinite in '{bad[0]}'" if bad else "NaN or infinite")
    for key in ("intensity_scale", "probe_factor"):
        schema.number(meta, key, "bundle metadata", positive=True)
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


# what a bundle's files may weigh before anything is read: bundle.json is small; the
# probe is two float32 planes of N x N; the weights are the network's float32 parameters
# (safetensors adds a JSON header). A member declaring more is refused unread.
META_LIMIT = 1 << 20
HEADER_SLACK = 1 << 20
WEIGHTS_LIMIT = 512 << 20  # 134 M float32 parameters: far beyond any network trained here
UNSIZED_LIMIT = 64 << 20  # the weights of a bundle that records no network to size them by


def _member_sizes(p: Path) -> dict[str, int]:
    """The size each file of the bundle declares (zip directory or ``stat``), unread."""
    if p.is_file():
        try:
            with zipfile.ZipFile(p) as z:
                return {i.filename: i.file_size for i in z.infolist()}
        except (zipfile.BadZipFile, OSError) as exc:
            raise InputError(str(p), "a readable bundle zip", type(exc).__name__) from None
    out = {}
    for name in (META, WEIGHTS, PROBE):
        with contextlib.suppress(OSError):
            if (p / name).is_file():
                out[name] = (p / name).stat().st_size
    return out


def _read_member(p: Path, name: str, limit: int) -> bytes:
    """File ``name`` of the bundle, reading at most ``limit`` bytes (more is refused: a
    zip member can inflate far beyond what its directory entry says)."""
    try:
        if p.is_file():
            with zipfile.ZipFile(p) as z, z.open(name) as fh:
                data = fh.read(limit + 1)
        else:
            with open(p / name, "rb") as fh:
                data = fh.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise InputError(f"bundle {p}: {name}", "a readable file",
                         f"{type(exc).__name__} (truncated or corrupted)") from None
    if len(data) > limit:
        raise InputError(f"bundle {p}: {name}", f"at most {limit} bytes", "more (refused)")
    return data


def _read_files(p: Path) -> dict[str, bytes]:
    """Every file of the bundle (for :func:`bundle_bytes`), each capped by its declared
    size in ``bundle.json``."""
    sizes = _member_sizes(p)
    out = {}
    if META in sizes:
        out[META] = _read_member(p, META, META_LIMIT)
        with contextlib.suppress(ValueError, UnicodeDecodeError, AttributeError, TypeError):
            files = json.loads(out[META]).get("files", {})
            for name in sizes:
                if name != META and isinstance(files.get(name), dict):
                    out[name] = _read_member(p, name, min(int(files[name]["size"]),
                                                          WEIGHTS_LIMIT))
    return out


def _network_shapes(meta: dict[str, Any], where: str) -> dict[str, tuple[int, ...]] | None:
    """The weight shapes of the network ``meta`` records (``None`` when it records none),
    built on the ``meta`` device: no memory is allocated."""
    net_cfg = schema.mapping(meta, "network", where, required=False)
    if net_cfg is None:
        return None
    from engine.network.model import NetworkConfig, PtychoNet

    try:
        config = NetworkConfig(**net_cfg)
    except TypeError as exc:
        raise InputError(f"{where}: field 'network'", "the fields of a network configuration",
                         str(exc).split("\n")[0]) from None
    except InputError as exc:
        raise InputError(f"{where}: field 'network.{exc.what}'", exc.expected, exc.got) from None
    if config.N != meta["N"]:
        raise InputError(f"{where}: field 'network.N'", f"N = {meta['N']}", str(config.N))
    if config.C != meta["gridsize"] ** 2:
        raise InputError(f"{where}: field 'gridsize'",
                         f"sqrt of the network's C = {config.C}", str(meta["gridsize"]))
    with torch.device("meta"):
        net = PtychoNet(config)
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def check_meta(meta: Any, where: str) -> dict[str, tuple[int, ...]] | None:
    """Refuse a ``bundle.json`` whose fields no writer of this project produces (one line
    naming ``where`` and the field); returns the network's weight shapes, if recorded.

    Examples
    --------
    >>> check_meta({"intensity_scale": float("nan"), "probe_factor": 1.0, "N": 32,
    ...             "gridsize": 1, "files": {}}, "bundle.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    engine.errors.InputError: bundle.json: field 'intensity_scale': expected a finite ...
    """
    schema.files_table(meta, where)
    schema.number(meta, "intensity_scale", where, positive=True)
    schema.number(meta, "probe_factor", where, positive=True)
    schema.number(meta, "N", where, integer=True, lo=1, hi=4096)
    schema.number(meta, "gridsize", where, integer=True, lo=1, hi=16)
    schema.flag(meta, "object_big", where, required="network" in meta)
    schema.mapping(meta, "config", where, required=False)
    if meta.get("target_factor") is not None:
        schema.number(meta, "target_factor", where, positive=True)
    return _network_shapes(meta, where)


def _check_limits(p: Path, meta: dict[str, Any], sizes: dict[str, int],
                  shapes: dict[str, tuple[int, ...]] | None) -> None:
    """Every listed file's declared size matches ``bundle.json`` and is what the network
    and probe can weigh, before any is read."""
    N = int(meta["N"])
    limits = {PROBE: 2 * 4 * N * N + HEADER_SLACK,
              WEIGHTS: UNSIZED_LIMIT if shapes is None
              else min(WEIGHTS_LIMIT,
                       4 * sum(int(np.prod(s)) for s in shapes.values()) + HEADER_SLACK)}
    for name, info in meta["files"].items():
        if name not in sizes:
            raise InputError(f"bundle {p}", f"file '{name}'", "missing")
        if sizes[name] != info["size"]:
            raise InputError(f"bundle {p}: {name}", f"{info['size']} bytes (bundle.json)",
                             f"{sizes[name]} bytes (tampered or truncated)")
        if info["size"] > limits.get(name, UNSIZED_LIMIT):
            raise InputError(f"bundle {p}: {META}: field 'files.{name}.size'",
                             f"at most {limits.get(name, UNSIZED_LIMIT)} bytes for N = {N}",
                             f"{info['size']} (refused unread)")


def _check_arrays(p: Path, meta: dict[str, Any], weights: dict[str, torch.Tensor],
                  planes: dict[str, torch.Tensor],
                  shapes: dict[str, tuple[int, ...]] | None) -> None:
    N = int(meta["N"])
    for plane in ("real", "imag"):
        if plane not in planes:
            raise InputError(f"bundle {p}: {PROBE}", f"the '{plane}' plane", "missing")
        schema.finite_array(planes[plane].float().numpy(), f"bundle {p}: {PROBE}: '{plane}'",
                            shape=(N, N))
    if shapes is not None:
        missing = sorted(set(shapes) - set(weights))
        extra = sorted(set(weights) - set(shapes))
        if missing or extra:
            raise InputError(f"bundle {p}: {WEIGHTS}", "the tensors of the recorded network",
                             f"{len(missing)} missing ({', '.join(missing[:2])}), "
                             f"{len(extra)} unexpected ({', '.join(extra[:2])})")
        for k, shape in shapes.items():
            if tuple(weights[k].shape) != shape:
                raise InputError(f"bundle {p}: {WEIGHTS}: '{k}'", f"shape {shape}",
                                 f"shape {tuple(weights[k].shape)}")
    for k, t in weights.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise InputError(f"bundle {p}: {WEIGHTS}: '{k}'", "finite values",
                             "NaN or infinite")


def load_bundle(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> Bundle:
    """Load and verify a bundle; any missing, truncated, altered or forged file is a
    one-line InputError.

    Digests catch damage; the fields are checked too (:func:`check_meta`: scale and
    probe factor finite and > 0, N and gridsize consistent with the network, the probe
    N x N and finite, the weights the network's shapes and finite), so an edit whose
    digests were recomputed is refused by what it says. Declared sizes are checked against
    what the network can weigh before anything is read.
    """
    refuse_tensorflow_bundle(path)  # PtychoPINN's pickled wts.h5.zip: say what it is
    p = resolve_bundle_path(path)
    sizes = _member_sizes(p)
    if META not in sizes:
        raise InputError(f"bundle {p}", f"a '{META}'", "none")
    raw = _read_member(p, META, META_LIMIT)
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"bundle {p}: {META}", "valid JSON", "unreadable (truncated?)") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise InputError(f"bundle {p}: {META}", f"format '{FORMAT}'",
                         repr(meta.get("format") if isinstance(meta, dict) else meta))
    if meta.get("manifest_sha256") != _manifest_digest(meta):
        raise InputError(f"bundle {p}: {META}", "content matching its manifest_sha256",
                         "a mismatch (edited or corrupted)")
    where = f"bundle {p}: {META}"
    shapes = check_meta(meta, where)
    for name in (WEIGHTS, PROBE):
        if name not in meta["files"]:
            raise InputError(where, f"a digest for '{name}'", "none")
    _check_limits(p, meta, sizes, shapes)
    files = {}
    for name, info in meta["files"].items():
        data = _read_member(p, name, info["size"])
        if len(data) != info["size"] or _sha256(data) != info["sha256"]:
            raise InputError(f"bundle {p}: {name}",
                             f"{info['size']} bytes with sha256 {info['sha256'][:12]}...",
                             f"{len(data)} bytes with sha256 {_sha256(data)[:12]}... "
                             "(tampered or truncated)")
        files[name] = data
    try:
        loaded = st_load(files[WEIGHTS])
        planes = st_load(files[PROBE])
    except SafetensorError as exc:
        raise InputError(f"bundle {p}", "valid safetensors files", str(exc)) from None
    _check_arrays(p, meta, loaded, planes, shapes)
    weights = {k: v.to(device) for k, v in loaded.items()}
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
