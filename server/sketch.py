"""Latency sketches: the t-digest behind a small interface, so that its
engine (the `tdigest` package today) can change without touching callers.

A sketch is a list of points (mean, count) in mean order: the t-digest's
centroids, plus values added since its last fold as points of count 1.
Folding has a fixed cost (the package's tree is rebuilt from the stored
centroids, ~2 ms for ~850) whatever the number of new values, so values are
kept exact until COMPRESS_AT points have gathered: a checkpoint can then fold
often, in small steps, and a comparison reads only a short tail after it.

Stored as packed little-endian doubles (mean, count, mean, count, ...) after
a 4-byte tag; the JSON form [[mean, count], ...] of earlier versions is
still read.
"""

import json
import random
import struct
from array import array
from collections.abc import Iterable

from tdigest import TDigest
from tdigest.tdigest import Centroid

# delta 0.01 keeps about 800-1,000 centroids for a million values and a p95
# within a small fraction of a percent of the exact one (tests/test_sketch.py).
DELTA = 0.01
# Points past which the exact values are folded into the digest: with
# ~850 centroids, each fold takes in some 650 values.
COMPRESS_AT = 1500
# Centroids past which a fold also runs the package's compression (~15 ms,
# re-inserting every centroid). New values mostly join existing centroids,
# so the count creeps up by about one a fold and this runs every few hundred
# folds; the package's own limit (K / delta = 2,500) would leave no room for
# exact values under COMPRESS_AT.
COMPRESS_CENTROIDS = 1000

_TAG = b"PGS1"
_LITTLE = struct.pack("=d", 1.0) == struct.pack("<d", 1.0)


class LatencySketch:
    """An immutable t-digest of durations."""

    __slots__ = ("centroids", "count")

    def __init__(self, centroids: list[tuple[float, float]] | None = None):
        self.centroids: list[tuple[float, float]] = centroids or []
        self.count = sum(c for _, c in self.centroids)

    def add(self, values: Iterable[float]) -> "LatencySketch":
        """A new sketch with `values` folded in."""
        values = [float(v) for v in values]
        if not values:
            return self
        if len(self.centroids) + len(values) <= COMPRESS_AT:
            return LatencySketch(sorted([*self.centroids, *((v, 1.0) for v in values)]))
        # Points of count 1 are values, so they go in as values. Stored means
        # are distinct keys of the package's tree; equal ones are merged all
        # the same, since a tree insert would replace rather than add.
        centroids: list[tuple[float, float]] = []
        for point in self.centroids:
            if point[1] == 1.0:
                values.append(point[0])
            elif centroids and centroids[-1][0] == point[0]:
                centroids[-1] = (point[0], centroids[-1][1] + point[1])
            else:
                centroids.append(point)
        digest = TDigest(delta=DELTA)
        # Centroids restored straight into the package's tree, not through its
        # loader, which re-clusters them as sorted input: t-digest handles that
        # badly and loses accuracy. Middles first, so that the tree never
        # rotates: half the time of inserting them in order.
        tree = digest.C
        for i in _balanced_order(len(centroids)):
            mean, count = centroids[i]
            tree.insert(mean, Centroid(mean, count))
        digest.n = sum(c for _, c in centroids)
        # The package re-clustered every centroid and inserted every value one
        # by one (TDigest.update, ~25 µs each in Python): ~27 ms a fold. Now
        # the values go in as runs of neighbours, a few values a point, and
        # the centroids are re-clustered only past COMPRESS_CENTROIDS.
        points = _runs(centroids, sorted(values), digest.n + len(values))
        # The package clusters best on unordered input.
        random.shuffle(points)
        for mean, count in points:
            digest.update(mean, count)
        if len(digest.C) > COMPRESS_CENTROIDS:
            digest.compress()
        return LatencySketch([(c.mean, c.count) for c in digest.C.values()])

    def quantile(self, q: float, extra: Iterable[float] = ()) -> float | None:
        """The q-quantile (0..1) of the sketch and `extra` values together,
        without folding them in; None when both are empty."""
        points = sorted([*self.centroids, *((float(v), 1.0) for v in extra)])
        if not points:
            return None
        total = sum(c for _, c in points)
        # The tdigest package's interpolation between centroid midpoints.
        target = q * total
        prev_mean, prev_count = points[0]
        cumulative = prev_count / 2
        if target < cumulative:
            return prev_mean
        for mean, count in points[1:]:
            step = (prev_count + count) / 2
            if target < cumulative + step:
                z1 = target - cumulative
                z2 = cumulative + step - target
                return (prev_mean * z2 + mean * z1) / (z1 + z2)
            cumulative += step
            prev_mean, prev_count = mean, count
        return points[-1][0]

    def to_bytes(self) -> bytes:
        flat = array("d", [x for point in self.centroids for x in point])
        if not _LITTLE:
            flat.byteswap()
        return _TAG + flat.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes | None) -> "LatencySketch":
        if not data:
            return cls()
        data = bytes(data)
        if not data.startswith(_TAG):
            return cls([(float(m), float(c)) for m, c in json.loads(data)])
        flat = array("d")
        flat.frombytes(data[len(_TAG) :])
        if not _LITTLE:
            flat.byteswap()
        return cls(list(zip(flat[0::2], flat[1::2], strict=True)))


def _runs(centroids: list[tuple[float, float]], values: list[float], n: float) -> list[tuple[float, float]]:
    """`values` (sorted) as weighted points (mean, count), for TDigest.update:
    runs of adjacent values merged while the run spans fewer ranks than the
    t-digest size bound 4·n·δ·q(1−q) at both of its ends (q(1−q) is concave,
    so its least over the run is at an end), the bound the package applies to
    a centroid. The span counts the weight of the stored centroids (sorted)
    between the run's values: bounding only the run's own count merged values
    far apart in rank, and p95 errors reached 28% on 1M values."""
    scale = 4 * DELTA / n  # the bound at rank r: scale * r * (n - r)
    points: list[tuple[float, float]] = []
    ci, ncent = 0, len(centroids)
    below = 0.0  # weight of the centroids below the current value
    run_sum, run_count, start_bound, start_rank = 0.0, 0, 0.0, 0.0
    for k, x in enumerate(values):
        while ci < ncent and centroids[ci][0] <= x:
            below += centroids[ci][1]
            ci += 1
        rank = below + k + 0.5
        bound = scale * rank * (n - rank)
        if run_count and rank - start_rank + 1 > min(start_bound, bound):
            points.append((run_sum / run_count, float(run_count)))
            run_sum, run_count = 0.0, 0
        if not run_count:
            start_bound, start_rank = bound, rank
        run_sum += x
        run_count += 1
    if run_count:
        points.append((run_sum / run_count, float(run_count)))
    return points


def _balanced_order(n: int) -> list[int]:
    """Indices 0..n-1 of a sorted list, each subrange's middle before its
    halves (breadth first): inserted in this order, the package's red-black
    tree needs no rotations, and its accumulated counts are recomputed along
    one short path per insert (about half the time of sorted order)."""
    order = []
    ranges = [(0, n)]
    for low, high in ranges:
        if low < high:
            middle = (low + high) // 2
            order.append(middle)
            ranges.append((low, middle))
            ranges.append((middle + 1, high))
    return order
