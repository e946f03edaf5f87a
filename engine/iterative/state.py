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
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import json_text
from engine.data import save_arrays
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
    try:
        with np.load(arrays, allow_pickle=False) as z:
            if STATE_KEY not in z.files:
                raise InputError(f"resume {arrays}", "a checkpoint holding its state (written "
                                 "by this version)", f"an older checkpoint without '{STATE_KEY}' "
                                 f"(its {LEGACY_META} cannot be checked against the arrays)")
            obj, probe, origin = z["object"], z["probe"], z["origin"]
            positions = z["positions"] if "positions" in z.files else None
            velocity = z["position_velocity"] if "position_velocity" in z.files else None
            meta = json.loads(str(z[STATE_KEY]))
        rng = np.random.default_rng()
        rng.bit_generator.state = meta["rng"]
        epoch = int(meta["epoch"])
        options = options_from_dict(meta["options"])
    except InputError:
        raise
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, EOFError, OSError,
            zipfile.BadZipFile) as exc:
        raise InputError(f"resume {arrays}", "a checkpoint written by ptycho reconstruct",
                         type(exc).__name__) from None
    state = SolverState(obj, probe, epoch, rng, list(meta.get("history", [])),
                        (int(origin[0]), int(origin[1])), positions, velocity)
    return state, options, meta
