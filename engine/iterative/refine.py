"""The network, then LSQ-ML: train (or load) a bundle, infer the canvas, refine it iteratively.

The network gives a fast, blurred but globally right estimate; a few LSQ-ML epochs from it
sharpen it (``benchmarks/RESULTS.md``, "The network beside the iterative solver"). This is
that chain as one action, writing one run directory in the layouts the command line writes::

    out/bundle/, out/checkpoint/    the training (as ``ptycho train --out out``), when trained
    out/network/recon.npz, *.png    the network's canvas (as ``ptycho infer ... --out out/network``)
    out/recon.npz, probe.npz, ...   the refined reconstruction (as ``ptycho reconstruct``)
    out/refine_checkpoint/          the solver's checkpoint (``ptycho reconstruct --resume``)

Examples
--------
>>> import tempfile
>>> from engine.network.config import TrainConfig
>>> from engine.simulation.simulate import SimulationConfig, simulate
>>> ds = simulate(SimulationConfig(object="asym", n_positions=36, N=32, step=6, seed=0))
>>> res = network_then_refine(ds, LSQMLOptions(iterations=2, batch_size=16),
...                           train_options=TrainConfig(epochs=1, base_channels=4),
...                           out=tempfile.mkdtemp())
>>> res.recon.epochs, (res.out / "network" / "recon.npz").is_file()
(2, True)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.data import Dataset
from engine.errors import InputError
from engine.events import Event, RunControl
from engine.iterative.options import LSQMLOptions, SolverOptions
from engine.iterative.result import ReconResult
from engine.iterative.solver import reconstruct
from engine.physics.stitching import Canvas

NETWORK_FOLDER = "network"
REFINE_CHECKPOINT = "refine_checkpoint"


@dataclass
class RefineResult:
    """What the chain produced.

    Attributes
    ----------
    out : the run directory (``None`` when nothing was written).
    bundle : the bundle the network canvas came from.
    network_canvas : the network's stitched canvas (the solver's start).
    recon : the refined reconstruction (``None`` when stopped before refining).
    train_metrics : the training's final metrics (empty when a bundle was given).
    stopped : True when a stop request ended the chain early.
    """

    out: Path | None
    bundle: Path
    network_canvas: Canvas | None
    recon: ReconResult | None
    train_metrics: dict[str, Any]
    stopped: bool

    @property
    def canvas(self) -> Canvas | None:
        """The final estimate: the refined canvas, else the network's."""
        return self.recon.canvas if self.recon is not None else self.network_canvas

    def summary(self) -> dict[str, Any]:
        out = {"bundle": str(self.bundle), "stopped": self.stopped,
               "trained": bool(self.train_metrics)}
        if self.train_metrics:
            out["train_loss"] = self.train_metrics.get("train_loss")
            out["val_loss"] = self.train_metrics.get("val_loss")
        if self.recon is not None:
            out.update({f"refine_{k}": v for k, v in self.recon.summary().items()})
        return out


def network_then_refine(data: Dataset, options: SolverOptions | None = None, *,
                        bundle: str | os.PathLike[str] | None = None,
                        train_options: Any = None, infer_options: Any = None,
                        out: str | os.PathLike[str] | None = None, backend: str = "numpy",
                        device: str = "auto", emit: Callable[[Event], None] | None = None,
                        control: RunControl | None = None,
                        checkpoint_every: int = 10) -> RefineResult:
    """Train a network (or take ``bundle``), infer ``data``'s canvas, refine it with a solver.

    Parameters
    ----------
    data : the dataset (diffraction, positions, probe).
    options : the solver's options (default :class:`LSQMLOptions`; ePIE/rPIE work too).
    bundle : a trained bundle (directory, run directory or zip); ``None`` trains one.
    train_options : the :class:`~engine.network.config.TrainConfig` of the training
        (default options) when no ``bundle`` is given.
    infer_options : the :class:`~engine.network.inference.InferConfig` of the network's
        canvas (default: the bundle's scale, the probe window; ``device`` when unset).
    out : the run directory (layout in the module docstring); training needs one.
    backend, device : the solver's compute backend and device; ``device`` is also the
        network's when the training or inference options leave it on ``auto``.
    emit, control : events of every stage (each stage's ``RunStarted`` starts a phase),
        then one ``Finished``; pause and stop act on the training and the solver.
    checkpoint_every : solver epochs between checkpoints in ``out/refine_checkpoint``.
    """
    from engine.events import Finished
    from engine.network.config import TrainConfig
    from engine.network.inference import InferConfig, infer, write_outputs
    from engine.network.trainer import train

    options = options or LSQMLOptions()
    if not isinstance(options, SolverOptions):
        raise InputError("options", "solver options (LSQMLOptions, EPIEOptions, RPIEOptions)",
                         type(options).__name__)
    emit = emit or (lambda event: None)
    control = control or RunControl()
    out_dir = Path(out) if out is not None else None
    train_metrics: dict[str, Any] = {}
    if bundle is None:
        if out_dir is None:
            raise InputError("out", "a run directory for the training's bundle", "none")
        cfg = train_options or TrainConfig()
        if not isinstance(cfg, TrainConfig):
            raise InputError("train_options", "a TrainConfig", type(cfg).__name__)
        if cfg.accelerator == "auto" and device.startswith("cuda"):
            cfg = TrainConfig.from_dict({**cfg.to_dict(), "accelerator": "cuda"})
        elif cfg.accelerator == "auto" and device == "cpu":
            cfg = TrainConfig.from_dict({**cfg.to_dict(), "accelerator": "cpu"})
        trained = train(data, cfg, out_dir, emit=emit, control=control)
        train_metrics = dict(trained.metrics)
        bundle_path = trained.bundle
        if trained.stopped:
            result = RefineResult(out_dir, bundle_path, None, None, train_metrics, True)
            emit(Finished(summary=result.summary()))
            return result
    else:
        bundle_path = Path(bundle)
    icfg = infer_options or InferConfig(device=device)
    inference = infer(bundle_path, data, icfg, emit=emit,
                      out_dir=None if out_dir is None else out_dir / NETWORK_FOLDER)
    network_canvas = inference.canvas
    if out_dir is not None:
        write_outputs(inference, out_dir / NETWORK_FOLDER)
    del inference  # holds the network's weights on the device: released before refining
    if control.stop_requested:
        result = RefineResult(out_dir, bundle_path, network_canvas, None, train_metrics, True)
        emit(Finished(summary=result.summary()))
        return result
    recon = reconstruct(data, options, backend=backend, device=device, init=network_canvas,
                        emit=emit, control=control,
                        checkpoint_dir=None if out_dir is None
                        else str(out_dir / REFINE_CHECKPOINT),
                        checkpoint_every=checkpoint_every)
    if out_dir is not None:
        recon.save(out_dir)
    result = RefineResult(out_dir, bundle_path, network_canvas, recon, train_metrics,
                          recon.stopped)
    emit(Finished(summary=result.summary()))
    return result
