"""Grouping of scan positions into network inputs (docs/conventions.md#grouping).

A group is a seed position plus C - 1 = gridsize² - 1 others drawn from its K nearest
neighbours, ordered row-major so that channel c sits at (c // g, c % g).

Examples
--------
>>> import numpy as np
>>> yy, xx = np.mgrid[0:4, 0:4] * 8.0 + 40
>>> pos = np.stack([yy.ravel(), xx.ravel()], 1)
>>> g = make_groups(pos, GroupingConfig(gridsize=2, neighbor_count=3, n_groups=5, seed=0))
>>> g.indices.shape, g.C
((5, 4), 4)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from engine.errors import InputError
from engine.options import Options, option, validate


@dataclass(frozen=True)
class GroupingConfig(Options):
    """How positions are grouped.

    Parameters
    ----------
    gridsize : g >= 1; C = g² patterns per group.
    neighbor_count : K >= C - 1 nearest neighbours a group draws from (default C - 1 + 3,
        capped by the data; ``None`` means that default).
    n_groups : number of groups (``None``: one per position).
    seed : random seed; same seed ⇒ same groups.
    """

    gridsize: int = option(1, "g: C = g^2 patterns per group", minimum=1)
    neighbor_count: int | None = option(
        None, "K nearest neighbours a group draws from (None: C - 1 + 3)", minimum=0,
        advanced=True)
    n_groups: int | None = option(None, "number of groups (None: one per position)", minimum=1)
    seed: int = option(0, "grouping seed; same seed, same groups", minimum=0, advanced=True)

    def __post_init__(self) -> None:
        validate(self)
        C = self.gridsize**2
        if self.neighbor_count is not None and self.neighbor_count < C - 1:
            raise InputError("neighbor_count", f"K >= C - 1 = {C - 1} for gridsize {self.gridsize}",
                             str(self.neighbor_count))

    @property
    def C(self) -> int:  # noqa: N802
        return self.gridsize**2


@dataclass(frozen=True)
class Groups:
    """Groups of positions.

    Attributes
    ----------
    indices : (G, C) int64, dataset index of each channel.
    positions : (G, C, 2) float64, member (y, x).
    gridsize : g.
    """

    indices: np.ndarray
    positions: np.ndarray
    gridsize: int

    @property
    def C(self) -> int:  # noqa: N802
        return self.gridsize**2

    @property
    def n_groups(self) -> int:
        return int(self.indices.shape[0])

    @property
    def offsets(self) -> np.ndarray:
        """(G, 2) group offset: mean position of the members."""
        return self.positions.mean(axis=1)

    @property
    def local_offsets(self) -> np.ndarray:
        """(G, C, 2) member position minus group offset."""
        return self.positions - self.offsets[:, None, :]

    def __len__(self) -> int:
        return self.n_groups

    def batches(self, batch_size: int):
        """Yield ``slice`` objects over groups; the last batch may be partial."""
        if batch_size < 1:
            raise InputError("batch_size", "an integer >= 1", str(batch_size))
        for start in range(0, self.n_groups, batch_size):
            yield slice(start, min(start + batch_size, self.n_groups))


def row_major(members: np.ndarray, positions: np.ndarray, gridsize: int) -> np.ndarray:
    """Order the C members of a group row-major: g rows by y, each row sorted by x."""
    order = members[np.argsort(positions[members, 0], kind="stable")].reshape(gridsize, gridsize)
    for r in range(gridsize):
        order[r] = order[r][np.argsort(positions[order[r], 1], kind="stable")]
    return order.reshape(-1)


def make_groups(positions: np.ndarray, config: GroupingConfig) -> Groups:
    """Group ``positions`` (n, 2) (y, x) according to ``config`` (docs/conventions.md#grouping)."""
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    n = positions.shape[0]
    g, C = config.gridsize, config.C
    if n < C:
        raise InputError("positions", f"at least C = {C} positions for gridsize {g}", f"n = {n}")
    K = config.neighbor_count if config.neighbor_count is not None else min(C - 1 + 3, n - 1)
    if C > 1 and K > n - 1:
        raise InputError("neighbor_count", f"K <= n - 1 = {n - 1} neighbours in the data",
                         f"K = {K}")
    n_groups = n if config.n_groups is None else config.n_groups
    if n_groups > n:
        raise InputError("n_groups", f"at most {n} (one group per seed position, no oversampling)",
                         str(n_groups))
    rng = np.random.default_rng(config.seed)
    seeds = rng.permutation(n)[:n_groups]
    if C == 1:
        indices = seeds[:, None].astype(np.int64)
    else:
        _, nbrs = cKDTree(positions).query(positions[seeds], k=K + 1)
        indices = np.empty((n_groups, C), dtype=np.int64)
        for i, (seed, row) in enumerate(zip(seeds, nbrs, strict=True)):
            others = row[row != seed][:K]
            chosen = rng.choice(others, size=C - 1, replace=False)
            indices[i] = row_major(np.concatenate([[seed], chosen]), positions, g)
    return Groups(indices=indices, positions=positions[indices], gridsize=g)
