"""Latency sketches: the t-digest behind a small interface, so that its
engine (the `tdigest` package today) can change without touching callers.

A sketch is a list of points (mean, count) in mean order: the t-digest's
centroids, plus values added since its last fold as points of count 1.
Folding has a fixed cost (the package's tree is rebuilt from the stored
centroids, ~2 ms for ~850) whatever the number of new values, so values are
kept exact until COMPRESS_AT points have gathered: a checkpoint can then fold
often, in small steps, and a comparison reads only a short tail after it.

A sketch is a pure function of the values added to it, in order, and of
nothing else: not of the global `random`, and not of how the values were
split between calls to `add`. Values are taken as if one at a time: a fold
runs exactly when a value brings the points past COMPRESS_AT, and its only
randomness is a generator seeded from the points it folds. So a checkpoint
rebuilt from its observations, folded in chunks of any size, has the bytes
of the one folded 200 at a time, as long as the engine is the same: the
`tdigest` version is pinned exactly, since a fold uses some of its private
surface (listed at _Digest, checked by tests/test_sketch.py).

Stored as packed little-endian doubles (mean, count, mean, count, ...) after
a 4-byte tag; the JSON form [[mean, count], ...] of earlier versions is
still read.
"""

import json
import math
import random
import struct
from array import array
from collections.abc import Iterable, Sequence
from operator import itemgetter

import numpy as np
from tdigest import TDigest
from tdigest.tdigest import Centroid

# delta 0.01 keeps about 800-1,000 centroids for a million values and a p95
# within a small fraction of a percent of the exact one (tests/test_sketch.py).
DELTA = 0.01
# Points past which the exact values are folded into the digest: with
# ~850 centroids, each fold takes in some 650 values.
COMPRESS_AT = 1500
# Centroids past which a fold also re-clusters the centroids (~15 ms,
# re-inserting every one). New values mostly join existing centroids, so the
# count creeps up by about one a fold and this runs every few hundred folds.
COMPRESS_CENTROIDS = 1000

# A bucket's digest (digest()): its points merged into about half this many
# centroids, small in the tails (the k1 scale function of the t-digest), so
# that a window of many buckets merges a few thousand points, not every value.
DIGEST_COMPRESSION = 160
# A day's digest, merged from its hours' (~7,700 values a version at
# benchmark (d)'s 1M a week): finer, since each of its centroids merges
# centroids already. On 6 days and 12 hours of 320 values, worst of 10
# seeds: p95 error 0.22%, p99 0.40% (at 800: 0.36%, 0.87%).
DAY_COMPRESSION = 1600

_TAG = b"PGS1"
_LITTLE = struct.pack("=d", 1.0) == struct.pack("<d", 1.0)

Point = tuple[float, float]


class LatencySketch:
    """An immutable t-digest of durations."""

    __slots__ = ("centroids", "count")

    def __init__(self, centroids: list[Point] | None = None):
        self.centroids: list[Point] = centroids or []
        self.count = sum(map(itemgetter(1), self.centroids))

    def add(self, values: Iterable[float]) -> "LatencySketch":
        """A new sketch with `values` folded in: the same, to the byte, as
        adding them one by one, or in any chunks, in the same order."""
        values = [float(v) for v in values]
        if not values:
            return self
        points = self.centroids
        start = 0
        # The value that brings the points past COMPRESS_AT closes a fold (a
        # sketch stored past it, by hand or by an earlier version, folds at
        # its first value); between folds values only gather, in mean order.
        while len(points) + len(values) - start > COMPRESS_AT:
            end = start + max(1, COMPRESS_AT + 1 - len(points))
            points = _fold(sorted([*points, *((v, 1.0) for v in values[start:end])]))
            start = end
        return LatencySketch(sorted([*points, *((v, 1.0) for v in values[start:])]))

    def quantile(self, q: float, extra: Iterable[float] = ()) -> float | None:
        """The q-quantile (0..1) of the sketch and `extra` values together,
        without folding them in; None when both are empty.

        Each point stands for its count of values centred on its mean; the
        quantile interpolates linearly between the midpoints of neighbouring
        points (the t-digest's own estimate), and is the first or last mean
        beyond them."""
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile {q!r} is outside 0..1")
        points = sorted([*self.centroids, *((float(v), 1.0) for v in extra)])
        if not points:
            return None
        total = sum(c for _, c in points)
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


class _Digest(TDigest):
    """The package's t-digest with its one random choice made fixed.

    TDigest.update tries the centroids nearest to a value in an order drawn
    from the global `random`; there are two only when the value lies exactly
    halfway between them (common with whole-millisecond durations), and then
    the draw decides which one takes it. Here only the upper one is offered
    it. (update still draws from the global random every time, and ignores
    the draw: a fold moves the global state but never depends on it.)

    What a fold uses of the package beyond TDigest(delta, K), update(x, w)
    and len(): the tree `C` of centroids by mean (insert(mean, centroid),
    values() in mean order), the total weight `n` that update's size bound
    reads, the Centroid(mean, count) class of the tree's values, this
    method, and that K only sets where the package compresses by itself."""

    def _find_closest_centroids(self, x: float) -> list:
        return super()._find_closest_centroids(x)[:1]


def _fold(points: list[Point]) -> list[Point]:
    """Sorted points folded into a t-digest's centroids, sorted."""
    # Points of count 1 are values, so they go in as values. Stored means
    # are distinct keys of the package's tree; equal ones are merged all
    # the same, since a tree insert would replace rather than add.
    centroids: list[Point] = []
    values: list[float] = []
    for point in points:
        if point[1] == 1.0:
            values.append(point[0])
        elif centroids and centroids[-1][0] == point[0]:
            centroids[-1] = (point[0], centroids[-1][1] + point[1])
        else:
            centroids.append(point)
    digest = _new_digest()
    # Centroids restored straight into the package's tree, not through
    # TDigest.update, which re-clusters them as sorted input: t-digest
    # handles that badly and loses accuracy. Middles first, so that the tree
    # never rotates: half the time of inserting them in order.
    tree = digest.C
    for i in _balanced_order(len(centroids)):
        mean, count = centroids[i]
        tree.insert(mean, Centroid(mean, count))
    digest.n = sum(map(itemgetter(1), centroids))
    # TDigest.update one value at a time costs ~25 µs each in Python: the
    # values go in as runs of neighbours instead, a few values a point.
    total = digest.n + len(values)
    runs = _runs(centroids, values, total)
    # The package clusters best on unordered input: shuffled by a generator
    # seeded with the fold's total weight, so the fold stays a function of
    # its points.
    rng = random.Random(round(total))
    for mean, count in _shuffled(runs, rng):
        digest.update(mean, count)
    if len(digest) > COMPRESS_CENTROIDS:
        # Re-clustered here rather than by the package's compress(), which
        # draws its order from the global random.
        clustered = [(c.mean, c.count) for c in digest.C.values()]
        digest = _new_digest()
        for mean, count in _shuffled(clustered, rng):
            digest.update(mean, count)
    return [(c.mean, c.count) for c in digest.C.values()]


def _new_digest() -> _Digest:
    # K sets only where the package compresses by itself (K / delta
    # centroids), with the global random; infinite, it never does.
    return _Digest(delta=DELTA, K=math.inf)


def _shuffled(items: list, rng: random.Random) -> list:
    """`items` in a random order drawn from `rng`, in place. Not
    rng.shuffle: its draws may change between Python versions, while
    random() is documented to give the same sequence for the same seed."""
    for i in range(len(items) - 1, 0, -1):
        j = int(rng.random() * (i + 1))
        items[i], items[j] = items[j], items[i]
    return items


def _runs(centroids: Sequence[Point], values: Sequence[float], n: float) -> list[Point]:
    """`values` (sorted) as weighted points (mean, count), for TDigest.update:
    runs of adjacent values merged while the run spans fewer ranks than the
    t-digest size bound 4·n·δ·q(1−q) at both of its ends (q(1−q) is concave,
    so its least over the run is at an end), the bound the package applies to
    a centroid. The span counts the weight of the stored centroids (sorted)
    between the run's values: bounding only the run's own count merged values
    far apart in rank, and p95 errors reached 28% on 1M values."""
    scale = 4 * DELTA / n  # the bound at rank r: scale * r * (n - r)
    points: list[Point] = []
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


def _digest_bounds(compression: int) -> np.ndarray:
    # The quantiles where the k1 scale, k(q) = c/(2π)·asin(2q − 1), crosses
    # a whole number: a digest's centroid spans at most one unit of k.
    steps = range(1, compression // 2)
    return np.array([(math.sin(math.pi * (j / (compression / 2) - 0.5)) + 1) / 2 for j in steps])


_BOUNDS = _digest_bounds(DIGEST_COMPRESSION)
_DAY_BOUNDS = _digest_bounds(DAY_COMPRESSION)


def payload(data: bytes | None) -> bytes:
    """A stored sketch's points as packed little-endian doubles (mean, count,
    ...) with no tag, the form digest() stores: such bytes concatenate."""
    if not data:
        return b""
    data = bytes(data)
    if data.startswith(_TAG) and _LITTLE:
        return data[len(_TAG) :]
    return np.asarray(LatencySketch.from_bytes(data).centroids, dtype="<f8").tobytes()


def points_array(blobs: Iterable[bytes], points: Sequence[Point] = ()) -> np.ndarray:
    """Packed points (payload(), digest()) and (mean, count) tuples as one
    n x 2 array, unsorted."""
    flat = np.frombuffer(b"".join(blobs), dtype="<f8").reshape(-1, 2)
    if len(points):
        flat = np.concatenate([flat, np.asarray(points, dtype="<f8").reshape(-1, 2)])
    return flat


def digest(data: bytes | None) -> bytes | None:
    """A stored sketch (a bucket's) merged into at most DIGEST_COMPRESSION/2
    centroids, packed as payload() packs points.

    A pure function of the sketch: a bucket rebuilt from its observations
    gets the same bytes. Neighbouring points whose midpoint quantiles fall
    between the same two of _BOUNDS merge; near q = 0 and 1 the bounds are
    dense, so the tails stay as they were."""
    if not data:
        return None
    return _compressed(np.frombuffer(payload(data), dtype="<f8").reshape(-1, 2), _BOUNDS)


def merged_digest(digests: Sequence[bytes | None]) -> bytes | None:
    """Digests (a day's hours', in hour order) merged into one of at most
    DAY_COMPRESSION/2 centroids: a pure function of them, in that order."""
    flat = points_array([bytes(d) for d in digests if d])
    if not len(flat):
        return None
    return _compressed(flat[np.argsort(flat[:, 0], kind="stable")], _DAY_BOUNDS)


def _compressed(flat: np.ndarray, bounds: np.ndarray) -> bytes:
    """Points sorted by mean, merged where their midpoint quantiles fall
    between the same two of `bounds`."""
    if len(flat) <= len(bounds) + 1:
        return flat.astype("<f8").tobytes()
    counts = flat[:, 1]
    cumulative = np.cumsum(counts)
    mids = (cumulative - counts / 2) / cumulative[-1]
    group = np.searchsorted(bounds, mids, side="right")
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    weights = np.add.reduceat(counts, starts)
    means = np.add.reduceat(flat[:, 0] * counts, starts) / weights
    # A merged mean stays inside its points' span (rounding could move it).
    ends = np.r_[starts[1:], len(flat)] - 1
    means = np.clip(means, flat[starts, 0], flat[ends, 0])
    return np.column_stack([means, weights]).astype("<f8").tobytes()


def array_quantiles(flat: np.ndarray, qs: Sequence[float]) -> list[float | None]:
    """LatencySketch.quantile of each of `qs` over an n x 2 array of points
    (points_array(): merged sketches, digests and loose values), sorted once
    with numpy: a window's buckets hold tens of thousands of points, too many
    to sort as Python tuples within a call. Cumulative counts are prefix
    sums here, so a result may differ from quantile()'s in the last bits."""
    if not len(flat):
        return [None] * len(qs)
    order = np.argsort(flat[:, 0], kind="stable")
    means = flat[order, 0]
    counts = flat[order, 1]
    cumulative = np.cumsum(counts)
    mids = cumulative - counts / 2
    total = cumulative[-1]
    out: list[float | None] = []
    for q in qs:
        if not 0.0 <= q <= 1.0:
            raise ValueError(f"quantile {q!r} is outside 0..1")
        target = q * total
        i = int(np.searchsorted(mids, target, side="right"))
        if i == 0:
            out.append(float(means[0]))
        elif i == len(means):
            out.append(float(means[-1]))
        else:
            z1, z2 = target - mids[i - 1], mids[i] - target
            out.append(float((means[i - 1] * z2 + means[i] * z1) / (z1 + z2)))
    return out
