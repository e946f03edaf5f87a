"""The dataset (docs/conventions.md#data-format): an NPZ file compatible with PtychoPINN's key
layout.

Reading validates everything before returning (nothing is half-loaded) and never unpickles;
writing is atomic.

Examples
--------
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> ds = simulate(SimulationConfig(n_positions=16, N=32, step=6, seed=0))
>>> ds.n, ds.N
(16, 32)
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from engine.atomic import atomic_open
from engine.errors import InputError
from engine.geometry import Geometry

DIFFRACTION_ALIASES = ("diffraction", "diff3d")


@runtime_checkable
class DiffractionStack(Protocol):
    """A (n, N, N) stack of amplitudes that is read on demand (an HDF5 dataset larger than
    memory, say) instead of held in memory.

    Consumers never read the whole stack at once: they take rows with :func:`read_rows`
    (a batch at a time). ``__getitem__`` accepts an int, a slice or a sorted or unsorted 1-D
    integer array and returns a float32 NumPy array of amplitudes (sqrt of counts), already
    prepared (centred, cropped, masked values left as stored). ``subset`` returns another
    lazy stack over the chosen rows, reading nothing.
    """

    shape: tuple[int, int, int]
    dtype: Any

    def __len__(self) -> int: ...

    def __getitem__(self, index: Any) -> np.ndarray: ...

    def subset(self, index: np.ndarray) -> DiffractionStack: ...


def is_lazy(diffraction: Any) -> bool:
    """True for a :class:`DiffractionStack` that is not an in-memory array."""
    return diffraction is not None and not isinstance(diffraction, np.ndarray)


def read_rows(diffraction: Any, index: Any) -> np.ndarray:
    """Rows ``index`` of an in-memory or lazy diffraction stack as float32 in memory."""
    return np.asarray(diffraction[index], dtype=np.float32)


@dataclass(frozen=True)
class Dataset:
    """Measured data plus optional ground truth.

    Parameters
    ----------
    diffraction : (n, N, N) float32
        Measured amplitudes, sqrt(counts), photon units. May be ``None`` only for files
        that carry an object and positions but no measurement (for simulation input).
    xcoords, ycoords : (n,) float64
        Probe centre column and row in object pixels.
    probe : (N, N) complex64
    object : (H, W) complex64 or None
    patches : (n, N, N) complex64 or None
        Ground-truth object patches (key ``Y``).
    scan_index : (n,) int64 or None
    metadata : dict
    pixel_mask : (N, N) bool or None
        True where a detector pixel is measured and enters every data term; False pixels
        (the file's mask, saturated or hot pixels) are predicted by the model, never fitted.
        ``None``: every pixel is valid.
    geometry : Geometry or None
        Wavelength, distance, detector pixel and propagation regime; ``None`` for data in
        pixel units only (docs/conventions.md#geometry).
    """

    diffraction: np.ndarray | None
    xcoords: np.ndarray
    ycoords: np.ndarray
    probe: np.ndarray
    object: np.ndarray | None = None
    patches: np.ndarray | None = None
    scan_index: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    pixel_mask: np.ndarray | None = None
    geometry: Geometry | None = None

    def __post_init__(self) -> None:
        validate(self)

    @property
    def n(self) -> int:
        return int(self.xcoords.shape[0])

    @property
    def N(self) -> int:  # noqa: N802 - the physics symbol
        return int(self.probe.shape[0])

    @property
    def pixel_size(self) -> tuple[float, float] | None:
        """(row, col) object pixel size in metres, or ``None`` without a geometry."""
        return None if self.geometry is None else self.geometry.object_pixel(self.N)

    @property
    def positions(self) -> np.ndarray:
        """(n, 2) float64 array of (row, col) = (y, x) probe centres."""
        return np.stack([self.ycoords, self.xcoords], axis=1)

    def subset(self, index: np.ndarray) -> Dataset:
        """A dataset of the positions ``index`` (the object and probe are shared)."""
        index = np.asarray(index)

        def pick(a: Any) -> Any:
            if a is None:
                return None
            return a.subset(index) if is_lazy(a) else a[index]

        return replace(
            self,
            diffraction=pick(self.diffraction),
            xcoords=self.xcoords[index],
            ycoords=self.ycoords[index],
            patches=pick(self.patches),
            scan_index=pick(self.scan_index),
        )

    def with_diffraction(self, diffraction: np.ndarray) -> Dataset:
        d = np.asarray(diffraction)
        if np.iscomplexobj(d):
            raise InputError("'diffraction'", "real amplitudes (sqrt of counts)",
                             f"dtype {d.dtype}")
        return replace(self, diffraction=d.astype(np.float32))


def _finite(name: str, a: np.ndarray) -> None:
    if not np.all(np.isfinite(a)):
        raise InputError(f"'{name}'", "finite values", f"{int(np.sum(~np.isfinite(a)))} NaN/Inf")


def validate(ds: Dataset) -> None:
    """Check docs/conventions.md#data-format; raise :class:`InputError` naming the first
    violation."""
    x, y = ds.xcoords, ds.ycoords
    if x.ndim != 1 or y.ndim != 1 or x.shape != y.shape:
        raise InputError("'xcoords'/'ycoords'", "two 1-D arrays of equal length",
                         f"shapes {x.shape} and {y.shape}")
    n = x.shape[0]
    if n == 0:
        raise InputError("'xcoords'", "at least one scan position (n >= 1)", "n = 0")
    _finite("xcoords", x)
    _finite("ycoords", y)
    p = ds.probe
    if p.ndim != 2 or p.shape[0] != p.shape[1] or p.shape[0] < 2:
        raise InputError("'probeGuess'", "a square (N, N) array", f"shape {p.shape}")
    _finite("probeGuess", p)
    N = p.shape[0]
    if ds.diffraction is not None and is_lazy(ds.diffraction):
        # reading a lazy stack whole to check it would defeat its purpose; its reader
        # validates values chunk by chunk as they are read
        if tuple(ds.diffraction.shape) != (n, N, N):
            raise InputError("'diffraction'", f"shape (n, N, N) = ({n}, {N}, {N})",
                             f"shape {tuple(ds.diffraction.shape)}")
    elif ds.diffraction is not None:
        d = ds.diffraction
        if np.iscomplexobj(d):
            raise InputError("'diffraction'", "real amplitudes (sqrt of counts)",
                             f"dtype {d.dtype}")
        if d.shape != (n, N, N):
            raise InputError("'diffraction'", f"shape (n, N, N) = ({n}, {N}, {N})",
                             f"shape {d.shape}")
        _finite("diffraction", d)
        if d.size and float(d.min()) < 0:
            raise InputError("'diffraction'", "amplitudes >= 0 (sqrt of counts)",
                             f"minimum {float(d.min()):.4g}")
    if ds.pixel_mask is not None:
        m = ds.pixel_mask
        if not isinstance(m, np.ndarray) or m.dtype != bool or m.shape != (N, N):
            raise InputError("'pixel_mask'", f"a ({N}, {N}) boolean array (True = valid)",
                             f"{type(m).__name__} {getattr(m, 'dtype', '')} "
                             f"{getattr(m, 'shape', '')}".strip())
        if not m.any():
            raise InputError("'pixel_mask'", "at least one valid detector pixel",
                             "every pixel masked")
    if ds.geometry is not None and not isinstance(ds.geometry, Geometry):
        raise InputError("'geometry'", "an engine.geometry.Geometry or None",
                         type(ds.geometry).__name__)
    if ds.patches is not None and ds.patches.shape != (n, N, N):
        raise InputError("'Y'", f"shape ({n}, {N}, {N})", f"shape {ds.patches.shape}")
    if ds.patches is not None:
        _finite("Y", ds.patches)
    if ds.scan_index is not None and ds.scan_index.shape != (n,):
        raise InputError("'scan_index'", f"shape ({n},)", f"shape {ds.scan_index.shape}")
    if ds.object is not None:
        o = ds.object
        if o.ndim != 2:
            raise InputError("'objectGuess'", "a 2-D (H, W) array", f"shape {o.shape}")
        _finite("objectGuess", o)
        check_positions_inside(ds.positions, o.shape, N, "'xcoords'/'ycoords'")


def check_positions_inside(positions: np.ndarray, shape: tuple[int, ...], N: int,
                           what: str = "positions") -> None:
    """Every N×N window centred at a position must lie inside an object of ``shape``.

    The window of position p spans rows p_y - N/2 ... p_y + N/2 - 1
    (docs/conventions.md#coordinates); bilinear interpolation reads one more row/column, which the
    backends supply by edge padding.
    """
    H, W = shape
    lo = positions - N / 2
    hi = positions + N / 2 - 1
    eps = 1e-6
    bad = ((lo[:, 0] < -eps) | (lo[:, 1] < -eps)
           | (hi[:, 0] > H - 1 + eps) | (hi[:, 1] > W - 1 + eps))
    if np.any(bad):
        j = int(np.argmax(bad))
        raise InputError(
            what,
            f"every {N}x{N} window inside the {H}x{W} object (N/2 <= y <= {H - N // 2}, "
            f"N/2 <= x <= {W - N // 2})",
            f"{int(bad.sum())} outside, first #{j} at (x={positions[j, 1]:.2f}, "
            f"y={positions[j, 0]:.2f})",
        )


def open_npz(path: str | os.PathLike[str], what: str = "a .npz file") -> Any:
    """Open an NPZ archive for reading, never unpickling; one-line errors for anything else.

    A missing path, a directory, an empty (0-byte) or truncated file, a plain ``.npy``
    array and a file that is not an archive at all are each an :class:`InputError`
    naming the path. Use as a context manager; read members with :func:`npz_array`.

    Examples
    --------
    >>> open_npz("missing.npz")
    Traceback (most recent call last):
    ...
    engine.errors.InputError: missing.npz: expected an existing .npz file, got no such file
    """
    p = Path(path)
    if not p.exists():
        raise InputError(str(p), f"an existing {what.removeprefix('a ')}", "no such file")
    if not p.is_file():
        raise InputError(str(p), what, "a directory")
    if p.stat().st_size == 0:
        raise InputError(str(p), what, "an empty (0-byte) file")
    head = b""
    try:
        with open(p, "rb") as fh:
            head = fh.read(6)
        npz = np.load(p, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        # NumPy takes anything that is neither a zip nor a .npy for a pickle: say which
        reason = ("pickled data (refused)" if head[:1] == b"\x80"
                  else f"not a readable .npz archive ({type(exc).__name__})")
        raise InputError(str(p), what, reason) from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise InputError(str(p), what, f"a single .npy array of shape {npz.shape}")
    try:
        check_member_sizes(npz, p)
    except BaseException:
        npz.close()
        raise
    return npz


def memory_limit() -> int:
    """The most bytes one array read from a file may declare: half the physical memory
    (a larger array could not be worked on anyway)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 16 << 30


def check_member_sizes(npz: Any, path: str | os.PathLike[str]) -> None:
    """Refuse, before anything is read, a member whose ``.npy`` header declares more data
    than the member holds (NumPy would allocate what the header says first: a 146 TiB
    header in a 1 kB file is a ``MemoryError``) or more than :func:`memory_limit`."""
    limit = memory_limit()
    for info in npz.zip.infolist():
        if not info.filename.endswith(".npy"):
            continue
        key = info.filename[:-4]
        try:
            with npz.zip.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(fh, max_header_size=1 << 16)
                header = fh.tell() if fh.seekable() else None
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise InputError(f"{path}: key '{key}'", "a readable .npy header",
                             f"{type(exc).__name__} (truncated or corrupted)") from None
        if dtype.hasobject:
            continue  # refused as pickled when read (npz_array), never allocated here
        declared = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        held = info.file_size - (header or 0)
        if declared > held or declared > limit:
            raise InputError(f"{path}: key '{key}'",
                             f"an array the file holds (at most {min(held, limit)} bytes)",
                             f"a header declaring shape {tuple(shape)} ({declared} bytes)")


def npz_array(npz: Any, key: str, path: str | os.PathLike[str]) -> np.ndarray:
    """Member ``key`` of an open NPZ; pickled (object) or unreadable members are refused."""
    try:
        return np.asarray(npz[key])
    except ValueError as exc:  # object arrays need pickle, which we refuse
        raise InputError(f"{path}: key '{key}'", "a numeric array (pickled objects are refused)",
                         str(exc).split("\n")[0]) from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise InputError(f"{path}: key '{key}'", "a readable array",
                         f"{type(exc).__name__} (truncated or corrupted archive)") from None


_get = npz_array


def _real(a: np.ndarray, key: str, path: Path, expected: str) -> np.ndarray:
    """``a`` if it holds real numbers; complex values are refused, not cast (which would
    silently drop the imaginary part)."""
    if np.iscomplexobj(a) or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
        raise InputError(f"{path}: key '{key}'", expected, f"dtype {a.dtype}")
    return a


def _coords(a: np.ndarray, key: str, path: Path) -> np.ndarray:
    """Scan coordinates as a 1-D float64 array; (n, 1) and (1, n) columns are accepted,
    any other shape is refused (flattening a (10, 10) grid would invent 100 positions)."""
    a = _real(a, key, path, "real coordinates in pixels")
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise InputError(f"{path}: key '{key}'", "a 1-D array of n positions", f"shape {a.shape}")
    return a.astype(np.float64)


def _diffraction_layout(d: np.ndarray, n: int, N: int, path: Path) -> np.ndarray:
    if d.ndim != 3:
        raise InputError(f"{path}: key 'diffraction'", "a 3-D (n, N, N) array", f"shape {d.shape}")
    standard = d.shape == (n, N, N)
    legacy = d.shape == (N, N, n)
    if standard and legacy:
        raise InputError(f"{path}: key 'diffraction'",
                         "a layout that is unambiguous ((n, N, N) with n != N)",
                         f"shape {d.shape} reads as both (n, N, N) and (N, N, n)")
    if legacy:
        return np.ascontiguousarray(np.moveaxis(d, 2, 0))
    return d


def read_npz(path: str | os.PathLike[str], *, require_diffraction: bool = True) -> Dataset:
    """Read and validate a dataset (docs/conventions.md#data-format).

    Parameters
    ----------
    path : path to an ``.npz`` file.
    require_diffraction : if False, a file without ``diffraction`` (only object, probe and
        positions, as PtychoPINN's reconstruction outputs) is accepted.
    """
    path = Path(path)
    npz = open_npz(path)
    with npz:
        keys = set(npz.files)
        for key in ("xcoords", "ycoords", "probeGuess"):
            if key not in keys:
                raise InputError(f"{path}", f"key '{key}'", f"keys {sorted(keys)}")
        x = _coords(_get(npz, "xcoords", path), "xcoords", path)
        y = _coords(_get(npz, "ycoords", path), "ycoords", path)
        probe = _get(npz, "probeGuess", path)
        dkey = next((k for k in DIFFRACTION_ALIASES if k in keys), None)
        diffraction = None
        if dkey is None and require_diffraction:
            raise InputError(f"{path}", "key 'diffraction' (or alias 'diff3d')",
                             f"keys {sorted(keys)}")
        if dkey is not None:
            raw = _real(_get(npz, dkey, path), dkey, path, "real amplitudes (sqrt of counts)")
            N = probe.shape[0] if probe.ndim == 2 else -1
            diffraction = _diffraction_layout(raw, x.shape[0], N, path).astype(np.float32)
        obj = _get(npz, "objectGuess", path).astype(np.complex64) if "objectGuess" in keys else None
        patches = _get(npz, "Y", path) if "Y" in keys else None
        if patches is not None:
            patches = patches.astype(np.complex64)
            if patches.ndim == 4 and patches.shape[-1] == 1:  # PtychoPINN stores (n, N, N, 1)
                patches = patches[..., 0]
        scan_index = (_get(npz, "scan_index", path).astype(np.int64)
                      if "scan_index" in keys else None)
        pixel_mask = None
        if "pixel_mask" in keys:
            pixel_mask = _get(npz, "pixel_mask", path).astype(bool)
        geometry = None
        if "geometry" in keys:
            raw_geo = _get(npz, "geometry", path)
            try:
                geometry = Geometry.from_dict(json.loads(str(raw_geo.item())))
            except (json.JSONDecodeError, ValueError):
                raise InputError(f"{path}: key 'geometry'", "a 0-d JSON string") from None
            except InputError as exc:
                raise InputError(f"{path}: key 'geometry': {exc.what}", exc.expected,
                                 exc.got) from None
        metadata: dict[str, Any] = {}
        if "metadata" in keys:
            raw_meta = _get(npz, "metadata", path)
            try:
                metadata = json.loads(str(raw_meta.item() if raw_meta.ndim == 0 else raw_meta[0]))
            except (json.JSONDecodeError, ValueError, IndexError):
                raise InputError(f"{path}: key 'metadata'", "a 0-d JSON string") from None
            if not isinstance(metadata, dict):
                raise InputError(f"{path}: key 'metadata'", "a JSON object")
    try:
        return Dataset(
            diffraction=diffraction,
            xcoords=x,
            ycoords=y,
            probe=probe.astype(np.complex64),
            object=obj,
            patches=patches,
            scan_index=scan_index,
            metadata=metadata,
            pixel_mask=pixel_mask,
            geometry=geometry,
        )
    except InputError as exc:
        raise InputError(f"{path}: {exc.what}", exc.expected, exc.got) from None


def write_npz(path: str | os.PathLike[str], ds: Dataset) -> Path:
    """Write ``ds`` atomically in the layout of docs/conventions.md#data-format (no pickled
    objects)."""
    validate(ds)
    arrays: dict[str, np.ndarray] = {
        "xcoords": ds.xcoords.astype(np.float64),
        "ycoords": ds.ycoords.astype(np.float64),
        "probeGuess": ds.probe.astype(np.complex64),
        "metadata": np.array(json.dumps(ds.metadata)),
    }
    if ds.diffraction is not None:
        arrays["diffraction"] = (read_rows(ds.diffraction, slice(None)) if is_lazy(ds.diffraction)
                                 else ds.diffraction.astype(np.float32))
    if ds.pixel_mask is not None:
        arrays["pixel_mask"] = ds.pixel_mask.astype(bool)
    if ds.geometry is not None:
        arrays["geometry"] = np.array(json.dumps(ds.geometry.to_dict()))
    if ds.object is not None:
        arrays["objectGuess"] = ds.object.astype(np.complex64)
    if ds.patches is not None:
        arrays["Y"] = ds.patches.astype(np.complex64)
    if ds.scan_index is not None:
        arrays["scan_index"] = ds.scan_index.astype(np.int64)
    return save_arrays(path, arrays)


def save_arrays(path: str | os.PathLike[str], arrays: dict[str, np.ndarray]) -> Path:
    """Atomically write a plain (pickle-free) NPZ of ``arrays``."""
    for key, a in arrays.items():
        if np.asarray(a).dtype == object:
            raise InputError(f"array '{key}'", "a numeric or string array, not Python objects")
    with atomic_open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return Path(path)
