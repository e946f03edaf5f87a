"""Solver state and its checkpoint: object, probe modes, epoch, random state, history.

A checkpoint is two files written atomically in one directory: ``checkpoint.npz`` (plain
arrays, no pickle) and ``checkpoint.json`` (epoch, the NumPy bit generator's state, the error
history, the options). Resuming from it continues exactly where the run stopped: batch orders
come from the restored generator, so a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.atomic import write_json
from engine.data import save_arrays
from engine.errors import InputError
from engine.iterative.options import SolverOptions, options_from_dict

CHECKPOINT_ARRAYS = "checkpoint.npz"
CHECKPOINT_META = "checkpoint.json"


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
    """

    object: np.ndarray
    probe: np.ndarray
    epoch: int
    rng: np.random.Generator
    history: list[dict[str, Any]] = field(default_factory=list)
    origin: tuple[int, int] = (0, 0)


def save_checkpoint(directory: str | os.PathLike[str], state: SolverState,
                    options: SolverOptions, extra: dict[str, Any] | None = None) -> Path:
    """Write the checkpoint of ``state`` into ``directory`` (arrays first, then metadata)."""
    d = Path(directory)
    save_arrays(d / CHECKPOINT_ARRAYS, {
        "object": np.asarray(state.object, dtype=np.complex128),
        "probe": np.asarray(state.probe, dtype=np.complex128),
        "origin": np.asarray(state.origin, dtype=np.int64),
    })
    write_json(d / CHECKPOINT_META, {
        "epoch": state.epoch,
        "rng": state.rng.bit_generator.state,
        "history": state.history,
        "options": options.to_dict(),
        **(extra or {}),
    })
    return d


def load_checkpoint(directory: str | os.PathLike[str]) -> tuple[SolverState, SolverOptions,
                                                                dict[str, Any]]:
    """Read a checkpoint: the state, the options it was written with, and the metadata."""
    d = Path(directory)
    arrays, meta_path = d / CHECKPOINT_ARRAYS, d / CHECKPOINT_META
    if not (arrays.is_file() and meta_path.is_file()):
        raise InputError(f"--resume {d}", f"a directory with {CHECKPOINT_ARRAYS} and "
                         f"{CHECKPOINT_META}", "missing files")
    try:
        meta = json.loads(meta_path.read_text())
        rng = np.random.default_rng()
        rng.bit_generator.state = meta["rng"]
        epoch = int(meta["epoch"])
        options = options_from_dict(meta["options"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{meta_path}", "a checkpoint written by ptycho reconstruct",
                         type(exc).__name__) from None
    with np.load(arrays, allow_pickle=False) as z:
        obj, probe, origin = z["object"], z["probe"], z["origin"]
    state = SolverState(obj, probe, epoch, rng, list(meta.get("history", [])),
                        (int(origin[0]), int(origin[1])))
    return state, options, meta
