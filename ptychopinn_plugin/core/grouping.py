"""Neighbour groups of scan points and their offsets, the input layout of gridsize > 1 training.

PtychoPINN feeds the network ``C = gridsize**2`` diffraction patterns at once (one group). For
gridsize 1 every scan point is its own group. For gridsize ``g > 1`` every scan point seeds exactly
one group (so every point is covered at least once) and the other ``C - 1`` members are drawn,
without replacement, from the seed's ``num_neighbors`` nearest neighbours (k-d tree). Per group we
keep the centroid of the member positions (where the predicted patch is stitched) and each member's
offset from that centroid (what the overlap constraint translates by).

Everything is vectorised: 100,000 positions group in a fraction of a second. Duplicate positions are
allowed; duplicates are simply neighbours at distance zero. Positions follow the contract
convention (``positions_px[:, 0]`` is x, the column; ``[:, 1]`` is y, the row; object pixels).
Stitching of predicted patches at the centroids lives in ``stitching.py``.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from ..errors import DataContractError

logger = logging.getLogger(__name__)

__all__ = ['Groups', 'check_positions_px', 'group_scan_points', 'overlap_order']

DEFAULT_NUM_NEIGHBORS = 7
"""Nearest neighbours a group's members are drawn from (PtychoPINN uses K of about 4 to 7)."""


@dataclass(frozen=True, eq=False)
class Groups:
    """Groups of scan points: member indices, centroids and relative offsets.

    Attributes
    ----------
    member_indices : ndarray, shape (G, C), int64
        Indices into the scan positions; column 0 is the seed point of each group.
    centroids_px : ndarray, shape (G, 2), float64
        Mean member position per group, columns (x, y), object pixels.
    relative_offsets_px : ndarray, shape (G, C, 2), float64
        Member position minus its group's centroid, columns (x, y), object pixels.
    """

    member_indices: np.ndarray
    centroids_px: np.ndarray
    relative_offsets_px: np.ndarray

    def __post_init__(self) -> None:
        members = np.asarray(self.member_indices)
        if members.ndim != 2 or not np.issubdtype(members.dtype, np.integer):
            raise DataContractError(
                f'member_indices must be a 2-D integer array (G, C), got {members.dtype} '
                f'{members.shape}'
            )
        num_groups, num_channels = members.shape
        centroids = np.asarray(self.centroids_px, dtype=np.float64)
        offsets = np.asarray(self.relative_offsets_px, dtype=np.float64)
        if centroids.shape != (num_groups, 2) or offsets.shape != (num_groups, num_channels, 2):
            raise DataContractError(
                f'for {num_groups} groups of {num_channels} the centroids must have shape '
                f'({num_groups}, 2) and the offsets ({num_groups}, {num_channels}, 2); got '
                f'{centroids.shape} and {offsets.shape}'
            )
        object.__setattr__(self, 'member_indices', members.astype(np.int64, copy=False))
        object.__setattr__(self, 'centroids_px', centroids)
        object.__setattr__(self, 'relative_offsets_px', offsets)

    @property
    def num_groups(self) -> int:
        """Number of groups G."""
        return int(self.member_indices.shape[0])

    @property
    def num_channels(self) -> int:
        """Members per group C (gridsize squared)."""
        return int(self.member_indices.shape[1])

    def max_offset_px(self) -> float:
        """Largest absolute offset component (x or y) of any member, in object pixels."""
        if self.relative_offsets_px.size == 0:
            return 0.0
        return float(np.max(np.abs(self.relative_offsets_px)))


def group_scan_points(
    positions_px: np.ndarray,
    gridsize: int,
    num_neighbors: int = DEFAULT_NUM_NEIGHBORS,
    seed: int = 0,
    num_groups: int | None = None,
) -> Groups:
    """Group scan points into seed-plus-neighbours groups of ``gridsize**2`` members.

    Parameters
    ----------
    positions_px : ndarray, shape (n, 2), real
        Scan positions, columns (x, y), object pixels. Duplicates are allowed.
    gridsize : int
        Side of the group grid; groups hold ``C = gridsize**2`` members (1: one point each).
    num_neighbors : int
        Members other than the seed are drawn from the seed's ``num_neighbors`` nearest
        neighbours; must be at least ``C - 1``. Clipped to ``n - 1`` when larger. Ignored for
        gridsize 1.
    seed : int
        Seed of the random draws (members and subset); the same seed gives the same groups.
    num_groups : int, optional
        Keep this many groups, a random subset in the original order. ``None`` (default) keeps
        one group per scan point.

    Returns
    -------
    Groups
        One group per scan point (or ``num_groups`` of them), seed in column 0.
    """
    positions = check_positions_px(positions_px)
    num_channels = _checked_gridsize(gridsize) ** 2
    num_points = positions.shape[0]
    if num_points < num_channels:
        raise DataContractError(
            f'gridsize {gridsize} needs at least {num_channels} scan positions per group, but '
            f'only {num_points} were given; use gridsize 1 or a longer scan'
        )
    rng = np.random.default_rng(seed)
    if num_channels == 1:
        members = np.arange(num_points, dtype=np.int64)[:, None]
    else:
        neighbors = _nearest_neighbors(positions, num_channels, num_neighbors)
        members = _draw_members(neighbors, num_channels, rng)
    members = _subset(members, num_groups, rng)
    member_positions = positions[members]
    centroids = member_positions.mean(axis=1)
    return Groups(
        member_indices=members,
        centroids_px=centroids,
        relative_offsets_px=member_positions - centroids[:, None, :],
    )


def check_positions_px(positions_px: np.ndarray) -> np.ndarray:
    """Check scan positions and return them as float64.

    Parameters
    ----------
    positions_px : array_like, shape (n, 2), real
        Scan positions, columns (x, y), object pixels.

    Returns
    -------
    ndarray, shape (n, 2), float64
        The same positions (no copy when already float64).
    """
    positions = np.asarray(positions_px)
    if positions.ndim != 2 or positions.shape[1] != 2:
        raise DataContractError(
            f'positions must have shape (n, 2) with columns (x, y), got {positions.shape}; '
            'stack them with np.stack([x_px, y_px], axis=1)'
        )
    if not np.issubdtype(positions.dtype, np.number) or np.iscomplexobj(positions):
        raise DataContractError(f'positions must be real numbers, got dtype {positions.dtype}')
    positions = positions.astype(np.float64, copy=False)
    if not np.all(np.isfinite(positions)):
        bad = int(np.count_nonzero(~np.all(np.isfinite(positions), axis=1)))
        raise DataContractError(
            f'{bad} of {positions.shape[0]} scan positions are NaN or infinite; drop those '
            'patterns or repair their positions'
        )
    return positions


def _checked_gridsize(gridsize: int) -> int:
    if isinstance(gridsize, bool) or not isinstance(gridsize, int | np.integer) or gridsize < 1:
        raise DataContractError(f'gridsize must be an integer >= 1, got {gridsize!r}')
    return int(gridsize)


def _nearest_neighbors(positions: np.ndarray, num_channels: int, num_neighbors: int) -> np.ndarray:
    """Indices (n, K) of each point's K nearest other points, nearest first."""
    num_points = positions.shape[0]
    if num_neighbors < num_channels - 1:
        raise DataContractError(
            f'num_neighbors={num_neighbors} is too small: groups of {num_channels} need at least '
            f'{num_channels - 1} neighbours to draw from; raise num_neighbors'
        )
    if num_neighbors > num_points - 1:
        logger.debug('num_neighbors %d clipped to %d (n - 1)', num_neighbors, num_points - 1)
        num_neighbors = num_points - 1
    _, found = cKDTree(positions).query(positions, k=num_neighbors + 1, workers=-1)
    found = np.asarray(found, dtype=np.int64).reshape(num_points, num_neighbors + 1)
    # Drop the point itself; with duplicates it may not come first, or (many duplicates) not at all,
    # in which case the farthest candidate is dropped instead.
    keep = found != np.arange(num_points)[:, None]
    keep[np.all(keep, axis=1), -1] = False
    return found[keep].reshape(num_points, num_neighbors)


def _draw_members(neighbors: np.ndarray, num_channels: int, rng: np.random.Generator) -> np.ndarray:
    """Seed (column 0) plus C - 1 neighbours drawn without replacement, per row."""
    num_points, num_neighbors = neighbors.shape
    order = np.argsort(rng.random((num_points, num_neighbors)), axis=1)[:, : num_channels - 1]
    drawn = np.take_along_axis(neighbors, order, axis=1)
    seeds = np.arange(num_points, dtype=np.int64)[:, None]
    return np.concatenate([seeds, drawn], axis=1)


def _subset(members: np.ndarray, num_groups: int | None, rng: np.random.Generator) -> np.ndarray:
    if num_groups is None:
        return members
    if isinstance(num_groups, bool) or not isinstance(num_groups, int | np.integer):
        raise DataContractError(f'num_groups must be an integer or None, got {num_groups!r}')
    if num_groups < 1:
        raise DataContractError(
            f'num_groups must be at least 1 (or None for all), got {num_groups}'
        )
    available = members.shape[0]
    if num_groups >= available:
        logger.debug('num_groups %d >= %d available groups: keeping all', num_groups, available)
        return members
    keep = np.sort(rng.choice(available, size=num_groups, replace=False))
    return members[keep]


def overlap_order(positions_px: np.ndarray, num_neighbors: int = 8) -> np.ndarray:
    """An order of the points in which each one (after the first) follows a near neighbour.

    Breadth-first over the ``num_neighbors``-nearest-neighbour graph, starting from the point
    nearest the scan's centre; disconnected clusters follow one another. Stitching with phase
    alignment uses it so that every patch meets already-stitched neighbours.

    Parameters
    ----------
    positions_px : ndarray (n, 2) float, (x, y) in object pixels.

    Returns
    -------
    ndarray (n,) int64, a permutation of ``range(n)``.
    """
    positions = check_positions_px(positions_px)
    count = positions.shape[0]
    if count <= 2:
        return np.arange(count, dtype=np.int64)
    k = min(num_neighbors + 1, count)
    _, neighbours = cKDTree(positions).query(positions, k=k)
    centre = positions.mean(axis=0)
    start = int(np.argmin(np.sum((positions - centre) ** 2, axis=1)))
    visited = np.zeros(count, dtype=bool)
    order: list[int] = []
    pending = deque([start])
    visited[start] = True
    unvisited_from = 0
    while len(order) < count:
        if not pending:
            while visited[unvisited_from]:
                unvisited_from += 1
            visited[unvisited_from] = True
            pending.append(unvisited_from)
        point = pending.popleft()
        order.append(point)
        for other in neighbours[point]:
            if not visited[other]:
                visited[other] = True
                pending.append(int(other))
    return np.asarray(order, dtype=np.int64)
