"""Latency sketches: the t-digest behind a small interface, so that its
engine (the `tdigest` package today) can change without touching callers.

A sketch is stored as its centroids, [[mean, count], ...] in mean order.
"""

import json
from collections.abc import Iterable

from tdigest import TDigest
from tdigest.tdigest import Centroid

# delta 0.01 keeps about 800 centroids for a million values and a p95 within
# a small fraction of a percent of the exact one (tests/test_sketch.py).
DELTA = 0.01


class LatencySketch:
    """An immutable t-digest of durations."""

    __slots__ = ("centroids", "count")

    def __init__(self, centroids: list[tuple[float, float]] | None = None):
        self.centroids: list[tuple[float, float]] = centroids or []
        self.count = sum(c for _, c in self.centroids)

    def _digest(self) -> TDigest:
        digest = TDigest(delta=DELTA)
        # Restored centroid by centroid: the package's own loader re-clusters
        # them as sorted input, which t-digest handles badly and loses accuracy.
        for mean, count in self.centroids:
            digest._add_centroid(Centroid(mean, count))
        digest.n = self.count
        return digest

    def add(self, values: Iterable[float]) -> "LatencySketch":
        """A new sketch with `values` folded in."""
        values = list(values)
        if not values:
            return self
        digest = self._digest()
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
        cumulative = 0.0
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
        return json.dumps(self.centroids, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes | None) -> "LatencySketch":
        if not data:
            return cls()
        return cls([(float(m), float(c)) for m, c in json.loads(bytes(data))])
