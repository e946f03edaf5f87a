"""Is a trained network's output nearly flat against its data?

A network that has not learnt yet draws almost the same patch everywhere: its canvas is
flat, its SSIM near that of a constant image, and yet the run ends normally. Two relative
figures catch that (docs/conventions.md#statistics), on up to ``max_groups`` training groups
after training:

- ``pattern_ratio``: the network's predicted diffraction amplitudes vary from pattern to
  pattern by this fraction of what the measured ones do (mean over pixels of the variance
  across patterns, predicted / measured, X units). A flat object predicts the same pattern
  at every position: 0. Needs no ground truth.
- ``truth_ratio`` (when the data carry the truth, ``Y`` or ``objectGuess``): the mean
  within-patch variance of the network's complex patches over that of the true patches
  brought into X units, both on the central N/2 window that stitching uses. A global phase
  or a shift does not change it; a flat output gives 0, a faithful one about 1.

The verdict ``flat`` is either ratio below ``FLAT_RATIO``. ``pattern_ratio`` is the one that
catches an untrained network: its patches may keep some texture (``truth_ratio`` 0.23 after
104 steps, amplitude r -0.03 against the truth) while the patterns it predicts hardly change
from one position to the next (``pattern_ratio`` 0.06).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from engine.data import Dataset

log = logging.getLogger(__name__)

# Below a tenth of the data's (or the truth's) variation the canvas is "nearly flat". Measured
# on lines, N = 64, 1,024 positions, gridsize 2, width 8 (README, "Training recipes"): after
# 104 steps (amplitude r -0.03, SSIM 0.07 against the truth) pattern_ratio was 0.064; after
# the quick preset's 988 steps (r 0.78) pattern_ratio 0.62 and truth_ratio 0.57.
FLAT_RATIO = 0.1


def _truth_patches(ds: Dataset, index: np.ndarray) -> np.ndarray | None:
    if ds.patches is not None:
        return ds.patches[index]
    if ds.object is None:
        return None
    from engine.physics.sources import truth_patches

    return truth_patches(ds.subset(index))


def output_flatness(model: Any, x: Any, prep: Any, ds: Dataset, batch_size: int, *,
                    max_groups: int = 256) -> dict[str, Any]:
    """The figures of the module docstring for a trained ``model`` (a
    :class:`~engine.network.physics.PhysicsModel`) on the prepared training data ``prep``
    (``x`` its scaled patterns on the model's device).

    Returns ``{"flat", "pattern_ratio", "truth_ratio" (None without truth), "threshold",
    "n_groups"}``.
    """
    import torch

    from engine.network.predict import predict
    from engine.physics.grouping import Groups

    train = prep.train
    n = min(max_groups, train.n_groups)
    groups = Groups(indices=train.indices[:n], positions=train.positions[:n],
                    gridsize=train.gridsize)
    N = int(x.shape[-1])
    lo, hi = N // 4, N // 4 + N // 2
    s1 = s2 = m1 = m2 = None
    count = 0
    out_var = []
    # masked detector pixels: the measurement says nothing there, so neither side counts them
    valid = getattr(prep, "mask", None)
    valid = None if valid is None else torch.as_tensor(valid, dtype=torch.float64,
                                                       device=torch.device(x.device))
    for _, obj, pred, xb in predict(model, x, groups, batch_size):
        p = pred.detach().double().reshape(-1, N, N)
        if valid is not None:
            p = p * valid
        m = xb.detach().double().reshape(-1, N, N)
        s1 = p.sum(0) if s1 is None else s1 + p.sum(0)
        s2 = (p * p).sum(0) if s2 is None else s2 + (p * p).sum(0)
        m1 = m.sum(0) if m1 is None else m1 + m.sum(0)
        m2 = (m * m).sum(0) if m2 is None else m2 + (m * m).sum(0)
        count += p.shape[0]
        o = obj.detach().to(torch.complex128).reshape(-1, N, N)[:, lo:hi, lo:hi]
        out_var.append((o - o.mean(dim=(-2, -1), keepdim=True)).abs().square()
                       .mean(dim=(-2, -1)).cpu().numpy())
    var_pred = float((s2 / count - (s1 / count) ** 2).clamp(min=0).mean())
    var_meas = float((m2 / count - (m1 / count) ** 2).clamp(min=0).mean())
    pattern_ratio = var_pred / var_meas if var_meas > 0 else float("nan")
    truth_ratio = None
    truth = _truth_patches(ds, groups.indices.reshape(-1))
    if truth is not None:
        probe = prep.probe
        c = np.sqrt((N / 2) ** 2 / np.mean(np.sum(np.abs(probe * truth) ** 2, axis=(1, 2))))
        t = (c * truth.astype(np.complex128))[:, lo:hi, lo:hi]
        var_truth = float(np.mean(np.abs(t - t.mean(axis=(1, 2), keepdims=True)) ** 2))
        if var_truth > 0:
            truth_ratio = float(np.mean(np.concatenate(out_var))) / var_truth
    ratios = {"the measured patterns'": pattern_ratio}
    if truth_ratio is not None:
        ratios["the true object's"] = truth_ratio
    against, ratio = min(ratios.items(), key=lambda kv: kv[1] if np.isfinite(kv[1]) else -1)
    flat = bool(not np.isfinite(ratio) or ratio < FLAT_RATIO)
    result = {"flat": flat, "pattern_ratio": pattern_ratio, "truth_ratio": truth_ratio,
              "threshold": FLAT_RATIO, "n_groups": n}
    if flat:
        log.warning("the network's output is nearly flat: its variation is %.3g of %s "
                    "(below %g); train longer or with a larger preset before trusting it",
                    ratio, against, FLAT_RATIO)
    return result
