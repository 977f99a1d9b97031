"""Latency sketches: the t-digest behind a small interface, so that its
engine (the `tdigest` package today) can change without touching callers.

A sketch is a list of points (mean, count) in mean order: the t-digest's
centroids, plus values added since its last compression as points of count
1. Compressing costs a fixed ~15 ms (the package re-clusters every centroid)
whatever the number of new values, so values are kept exact until
COMPRESS_AT points have gathered: a checkpoint can then fold often, in small
steps, and a comparison reads only a short tail after it.

Stored as packed little-endian doubles (mean, count, mean, count, ...) after
a 4-byte tag; the JSON form [[mean, count], ...] of earlier versions is
still read.
"""

import json
import struct
from array import array
from collections.abc import Iterable

from tdigest import TDigest
from tdigest.tdigest import Centroid

# delta 0.01 keeps about 800 centroids for a million values and a p95 within
# a small fraction of a percent of the exact one (tests/test_sketch.py).
DELTA = 0.01
# Points past which the sketch is compressed: about twice the centroids that
# a compression leaves, so each one absorbs some 700 values.
COMPRESS_AT = 1500

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
        digest = TDigest(delta=DELTA)
        # Centroids restored one by one: the package's own loader re-clusters
        # them as sorted input, which t-digest handles badly and loses accuracy.
        # Points of count 1 are values, so they go in as values.
        for mean, count in self.centroids:
            if count == 1.0:
                values.append(mean)
            else:
                digest._add_centroid(Centroid(mean, count))
                digest.n += count
        digest.batch_update(values)
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
