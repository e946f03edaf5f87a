"""Solver state and its checkpoint: object, probe modes, epoch, random state, history.

A checkpoint is one file written atomically, ``checkpoint.npz``: plain arrays (no pickle) and,
under the key ``state``, a JSON string of the epoch, the NumPy bit generator's state, the error
history and the options. Arrays and state are one unit: a kill leaves the previous checkpoint
or the new one, never the arrays of one epoch beside the state of another. Resuming from it
continues exactly where the run stopped: batch orders come from the restored generator, so a
resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine import schema
from engine.atomic import json_text
from engine.data import npz_array, open_npz, save_arrays
from engine.errors import InputError
from engine.iterative.options import SolverOptions, options_from_dict

CHECKPOINT_ARRAYS = "checkpoint.npz"
STATE_KEY = "state"
LEGACY_META = "checkpoint.json"  # the state's own file before it moved into the NPZ


@dataclass
class SolverState:
    """Host copy of everything a run needs to continue.

    Attributes
    ----------
    object : (H, W) complex on the solver grid.
    probe : (K, N, N) complex modes, normalised units.
    epoch : completed epochs.
    rng : the generator of batch orders.
    history : one record per completed epoch.
    origin : object-coordinate (row, col) of the grid's pixel 0.
    positions : (n, 2) corrected window centres in object coordinates (position-corrected
        runs), else ``None``; ``position_velocity`` their last epoch's move (the momentum).
    """

    object: np.ndarray
    probe: np.ndarray
    epoch: int
    rng: np.random.Generator
    history: list[dict[str, Any]] = field(default_factory=list)
    origin: tuple[int, int] = (0, 0)
    positions: np.ndarray | None = None
    position_velocity: np.ndarray | None = None


def save_checkpoint(directory: str | os.PathLike[str], state: SolverState,
                    options: SolverOptions, extra: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint of ``state`` into ``directory``: one NPZ, arrays and state."""
    d = Path(directory)
    meta = {
        "epoch": state.epoch,
        "rng": state.rng.bit_generator.state,
        "history": state.history,
        "options": options.to_dict(),
        **(extra or {}),
    }
    arrays = {
        "object": np.asarray(state.object, dtype=np.complex128),
        "probe": np.asarray(state.probe, dtype=np.complex128),
        "origin": np.asarray(state.origin, dtype=np.int64),
        STATE_KEY: np.array(json_text(meta)),
    }
    if state.positions is not None:
        arrays["positions"] = np.asarray(state.positions, dtype=np.float64)
        arrays["position_velocity"] = np.asarray(state.position_velocity, dtype=np.float64)
    save_arrays(d / CHECKPOINT_ARRAYS, arrays)
    with contextlib.suppress(FileNotFoundError):  # an older run's separate state file
        (d / LEGACY_META).unlink()
    return d


def load_checkpoint(directory: str | os.PathLike[str]) -> tuple[SolverState, SolverOptions,
                                                                dict[str, Any]]:
    """Read a checkpoint: the state, the options it was written with, and the metadata."""
    d = Path(directory)
    arrays = d / CHECKPOINT_ARRAYS
    if not arrays.is_file():
        raise InputError(f"resume {d}", f"a directory with {CHECKPOINT_ARRAYS}", "none found")
    where = f"resume {arrays}"
    with open_npz(arrays, "a checkpoint written by ptycho reconstruct") as z:
        if STATE_KEY not in z.files:
            raise InputError(where, "a checkpoint holding its state (written "
                             "by this version)", f"an older checkpoint without '{STATE_KEY}' "
                             f"(its {LEGACY_META} cannot be checked against the arrays)")
        for key in ("object", "probe", "origin"):
            if key not in z.files:
                raise InputError(where, f"key '{key}'", f"keys {sorted(z.files)}")
        obj, probe, origin = (npz_array(z, k, arrays) for k in ("object", "probe", "origin"))
        raw = npz_array(z, STATE_KEY, arrays)
        positions = npz_array(z, "positions", arrays) if "positions" in z.files else None
        velocity = (npz_array(z, "position_velocity", arrays)
                    if "position_velocity" in z.files else None)
    try:
        meta = json.loads(str(raw.item() if raw.ndim == 0 else ""))
    except (json.JSONDecodeError, ValueError):
        raise InputError(f"{where}: key '{STATE_KEY}'", "a JSON string", "unreadable") from None
    schema.mapping({"state": meta}, "state", where)
    try:
        options = options_from_dict(schema.mapping(meta, "options", where))
    except InputError as exc:
        raise InputError(f"{where}: field 'options.{exc.what}'", exc.expected, exc.got) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: field 'options'", "a solver's options",
                         f"{type(exc).__name__}: {exc}"[:100]) from None
    epoch = schema.number(meta, "epoch", where, integer=True, lo=0, hi=options.iterations)
    history = schema.listing(meta, "history", where, required=False) or []
    obj = schema.finite_array(obj, f"{where}: key 'object'", ndim=2)
    probe = schema.finite_array(probe, f"{where}: key 'probe'", ndim=3)
    if probe.shape[1] != probe.shape[2] or probe.shape[0] < 1:
        raise InputError(f"{where}: key 'probe'", "(K, N, N) probe modes", f"shape {probe.shape}")
    modes = getattr(options, "probe_modes", None)
    if isinstance(modes, int) and probe.shape[0] != modes:
        raise InputError(f"{where}: key 'probe'", f"{modes} modes (options.probe_modes)",
                         f"{probe.shape[0]} (shape {probe.shape})")
    if obj.shape[0] < probe.shape[1] or obj.shape[1] < probe.shape[2]:
        raise InputError(f"{where}: key 'object'", f"a grid at least the probe's "
                         f"{probe.shape[1:]}", f"shape {obj.shape}")
    origin = schema.finite_array(origin, f"{where}: key 'origin'", shape=(2,))
    rng = np.random.default_rng()
    try:
        rng.bit_generator.state = schema.mapping(meta, "rng", where)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{where}: field 'rng'", "the state of a NumPy bit generator",
                         f"{type(exc).__name__}") from None
    if positions is not None:
        positions = schema.finite_array(positions, f"{where}: key 'positions'", ndim=2)
        if positions.shape[1] != 2:
            raise InputError(f"{where}: key 'positions'", "(n, 2) positions",
                             f"shape {positions.shape}")
    if velocity is not None:
        velocity = schema.finite_array(velocity, f"{where}: key 'position_velocity'", ndim=2)
    state = SolverState(obj, probe, int(epoch), rng, list(history),
                        (int(origin[0]), int(origin[1])), positions, velocity)
    return state, options, meta
