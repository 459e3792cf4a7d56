"""Neighbour grouping: coverage, determinism, neighbourhood, offsets and input errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from ptychopinn_plugin.core.grouping import Groups, group_scan_points
from ptychopinn_plugin.errors import DataContractError

DISTANCE_TOLERANCE_PX = 1e-9
"""Float64 round-off when comparing neighbour distances computed two ways."""


def raster_positions(rng: np.random.Generator, side: int = 20, step_px: float = 5.0) -> np.ndarray:
    grid = np.arange(side) * step_px + 40.0
    x_px, y_px = np.meshgrid(grid, grid)
    positions = np.stack([x_px.ravel(), y_px.ravel()], axis=1)
    return positions + rng.uniform(-1.0, 1.0, positions.shape)


def test_gridsize_one_makes_every_point_its_own_group_with_zero_offsets(rng):
    positions = raster_positions(rng)
    groups = group_scan_points(positions, gridsize=1)
    assert groups.member_indices.shape == (len(positions), 1)
    np.testing.assert_array_equal(groups.member_indices[:, 0], np.arange(len(positions)))
    np.testing.assert_array_equal(groups.centroids_px, positions)
    assert groups.max_offset_px() == 0.0
    assert groups.num_channels == 1


def test_every_point_seeds_exactly_one_group(rng):
    positions = raster_positions(rng)
    groups = group_scan_points(positions, gridsize=2)
    assert groups.num_groups == len(positions)
    assert groups.num_channels == 4
    np.testing.assert_array_equal(groups.member_indices[:, 0], np.arange(len(positions)))


def test_members_of_a_group_are_distinct(rng):
    groups = group_scan_points(raster_positions(rng), gridsize=3, num_neighbors=10)
    sorted_members = np.sort(groups.member_indices, axis=1)
    assert np.all(np.diff(sorted_members, axis=1) > 0)


def test_members_are_among_the_seeds_k_nearest_neighbours(rng):
    positions = raster_positions(rng)
    num_neighbors = 6
    groups = group_scan_points(positions, gridsize=2, num_neighbors=num_neighbors)
    all_distances = np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)
    kth_distance = np.sort(all_distances, axis=1)[:, num_neighbors]  # index 0 is the point itself
    seeds = groups.member_indices[:, :1]
    member_distances = np.take_along_axis(all_distances[seeds[:, 0]], groups.member_indices, 1)
    assert np.all(member_distances <= kth_distance[:, None] + DISTANCE_TOLERANCE_PX)


def test_same_seed_gives_same_groups_and_another_seed_differs(rng):
    positions = raster_positions(rng)
    first = group_scan_points(positions, gridsize=2, seed=3)
    again = group_scan_points(positions, gridsize=2, seed=3)
    other = group_scan_points(positions, gridsize=2, seed=4)
    np.testing.assert_array_equal(first.member_indices, again.member_indices)
    assert not np.array_equal(first.member_indices, other.member_indices)


def test_centroid_is_member_mean_and_offsets_are_member_minus_centroid(rng):
    positions = raster_positions(rng)
    groups = group_scan_points(positions, gridsize=2)
    members = positions[groups.member_indices]
    np.testing.assert_allclose(groups.centroids_px, members.mean(axis=1))
    np.testing.assert_allclose(
        groups.relative_offsets_px, members - groups.centroids_px[:, None, :]
    )
    np.testing.assert_allclose(groups.relative_offsets_px.sum(axis=1), 0.0, atol=1e-9)
    assert groups.max_offset_px() == pytest.approx(np.abs(groups.relative_offsets_px).max())


def test_num_groups_keeps_a_deterministic_subset_of_the_full_grouping_in_scan_order(rng):
    positions = raster_positions(rng)
    everything = group_scan_points(positions, gridsize=2, seed=1)
    subset = group_scan_points(positions, gridsize=2, seed=1, num_groups=50)
    again = group_scan_points(positions, gridsize=2, seed=1, num_groups=50)
    assert subset.num_groups == 50
    np.testing.assert_array_equal(subset.member_indices, again.member_indices)
    seeds = subset.member_indices[:, 0]
    assert np.all(np.diff(seeds) > 0)
    np.testing.assert_array_equal(subset.member_indices, everything.member_indices[seeds])


def test_num_groups_at_least_the_number_of_points_keeps_all(rng):
    positions = raster_positions(rng, side=5)
    groups = group_scan_points(positions, gridsize=1, num_groups=1000)
    assert groups.num_groups == 25


def test_num_neighbors_beyond_the_scan_is_clipped(rng):
    positions = rng.uniform(0, 10, (5, 2))
    groups = group_scan_points(positions, gridsize=2, num_neighbors=50)
    assert groups.member_indices.shape == (5, 4)


def test_exactly_gridsize_squared_points_form_groups_of_all_points(rng):
    positions = rng.uniform(0, 10, (4, 2))
    groups = group_scan_points(positions, gridsize=2)
    np.testing.assert_array_equal(
        np.sort(groups.member_indices, axis=1), np.tile(np.arange(4), (4, 1))
    )


def test_duplicate_positions_are_allowed_and_still_give_distinct_members():
    positions = np.zeros((12, 2))
    positions[6:] = 3.0
    groups = group_scan_points(positions, gridsize=2, num_neighbors=5)
    sorted_members = np.sort(groups.member_indices, axis=1)
    assert np.all(np.diff(sorted_members, axis=1) > 0)
    np.testing.assert_array_equal(groups.member_indices[:, 0], np.arange(12))
    assert groups.max_offset_px() == 0.0  # five duplicates at each place: groups never mix


def test_grouping_100k_positions_covers_every_point_with_nearby_members():
    rng = np.random.default_rng(7)
    positions = rng.uniform(0, 3000, (100_000, 2))
    num_neighbors = 7
    groups = group_scan_points(positions, gridsize=2, num_neighbors=num_neighbors, seed=2)
    members = groups.member_indices
    assert members.shape == (100_000, 4)
    np.testing.assert_array_equal(members[:, 0], np.arange(100_000))
    assert np.all(np.diff(np.sort(members, axis=1), axis=1) > 0)
    distances, _ = cKDTree(positions).query(positions, k=num_neighbors + 1)
    member_distances = np.linalg.norm(positions[members] - positions[:, None, :], axis=-1)
    assert np.all(member_distances <= distances[:, -1:] + DISTANCE_TOLERANCE_PX)


@pytest.mark.parametrize(
    ('positions', 'kwargs', 'message'),
    [
        (np.zeros((3, 2)), {'gridsize': 2}, 'at least 4 scan positions'),
        (np.zeros((20, 2)), {'gridsize': 3}, 'num_neighbors=7 is too small'),
        (np.array([[0.0, 1.0], [np.nan, 2.0]] * 3), {'gridsize': 1}, 'NaN or infinite'),
        (np.zeros((10, 3)), {'gridsize': 1}, 'shape (n, 2)'),
        (np.zeros(10), {'gridsize': 1}, 'shape (n, 2)'),
        (np.zeros((10, 2)), {'gridsize': 0}, 'gridsize must be an integer >= 1'),
        (np.zeros((10, 2)), {'gridsize': 2.0}, 'gridsize must be an integer >= 1'),
        (np.zeros((10, 2)), {'gridsize': 1, 'num_groups': 0}, 'num_groups must be at least 1'),
        (np.zeros((10, 2), dtype=complex), {'gridsize': 1}, 'must be real'),
    ],
)
def test_bad_input_raises_a_data_contract_error_naming_the_problem(positions, kwargs, message):
    with pytest.raises(DataContractError, match=message.replace('(', r'\(').replace(')', r'\)')):
        group_scan_points(positions, **kwargs)


def test_groups_rejects_inconsistent_array_shapes():
    with pytest.raises(DataContractError, match='centroids must have shape'):
        Groups(
            member_indices=np.zeros((3, 4), dtype=np.int64),
            centroids_px=np.zeros((2, 2)),
            relative_offsets_px=np.zeros((3, 4, 2)),
        )
