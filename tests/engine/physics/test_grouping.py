"""Grouping (docs/conventions.md#grouping)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.errors import InputError
from engine.physics.grouping import GroupingConfig, make_groups


@pytest.fixture(scope="module")
def positions():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:10, 0:10] * 7.0
    return np.stack([yy.ravel(), xx.ravel()], 1) + rng.uniform(-1, 1, (100, 2)) + 40


def test_same_seed_same_groups(positions):
    cfg = GroupingConfig(gridsize=2, neighbor_count=6, n_groups=30, seed=5)
    a, b = make_groups(positions, cfg), make_groups(positions, cfg)
    np.testing.assert_array_equal(a.indices, b.indices)
    c = make_groups(positions, GroupingConfig(gridsize=2, neighbor_count=6, n_groups=30, seed=6))
    assert not np.array_equal(a.indices, c.indices)


@pytest.mark.parametrize("g", [2, 3])
def test_row_major_channel_order(positions, g):
    groups = make_groups(positions, GroupingConfig(gridsize=g, neighbor_count=g * g + 2, seed=1))
    p = groups.positions.reshape(-1, g, g, 2)
    # rows are ordered by y: every member of row r is above (or level with) row r + 1
    assert np.all(p[:, :-1, :, 0].max(axis=2) <= p[:, 1:, :, 0].min(axis=2) + 1e-9)
    # within a row, x increases with the column
    assert np.all(np.diff(p[..., 1], axis=2) >= 0)


def test_members_are_distinct_neighbours(positions):
    K = 5
    groups = make_groups(positions, GroupingConfig(gridsize=2, neighbor_count=K, seed=2))
    for idx in groups.indices:
        assert len(set(idx)) == 4
        # every member is among the K + 1 nearest of some member (the seed)
        d = np.linalg.norm(positions[idx][:, None] - positions[idx][None], axis=-1)
        assert d.max() < 4 * 7.0


def test_offsets(positions):
    groups = make_groups(positions, GroupingConfig(gridsize=2, n_groups=10, seed=3))
    np.testing.assert_allclose(groups.offsets, groups.positions.mean(axis=1))
    np.testing.assert_allclose(groups.local_offsets.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(groups.positions, positions[groups.indices])


def test_gridsize_one_is_a_permutation_of_seeds(positions):
    groups = make_groups(positions, GroupingConfig(gridsize=1, seed=0))
    assert groups.indices.shape == (100, 1)
    assert sorted(groups.indices[:, 0]) == list(range(100))
    np.testing.assert_array_equal(groups.local_offsets, 0)


def test_batches_cover_all_groups(positions):
    groups = make_groups(positions, GroupingConfig(gridsize=1, n_groups=10))
    sizes = [s.stop - s.start for s in groups.batches(4)]
    assert sizes == [4, 4, 2]
    with pytest.raises(InputError, match="batch_size"):
        list(groups.batches(0))


def test_impossible_requests_name_the_numbers(positions):
    with pytest.raises(InputError, match=r"neighbor_count: expected K >= C - 1 = 8"):
        GroupingConfig(gridsize=3, neighbor_count=4)
    with pytest.raises(InputError, match=r"n_groups: expected at most 100"):
        make_groups(positions, GroupingConfig(gridsize=1, n_groups=101))
    with pytest.raises(InputError, match=r"K <= n - 1 = 99"):
        make_groups(positions, GroupingConfig(gridsize=2, neighbor_count=100))
    with pytest.raises(InputError, match=r"at least C = 9 positions"):
        make_groups(positions[:5], GroupingConfig(gridsize=3))
    with pytest.raises(InputError, match="gridsize"):
        GroupingConfig(gridsize=0)
