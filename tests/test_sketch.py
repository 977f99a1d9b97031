"""The latency sketch behind p95: accuracy, determinism, format, quantile
edges, and the part of the `tdigest` package it relies on."""

import importlib.metadata
import inspect
import json
import math
import random
import re
from pathlib import Path

import pytest
from tdigest import TDigest
from tdigest.tdigest import Centroid

from promptgauge.server import sketch
from promptgauge.server.sketch import COMPRESS_AT, LatencySketch


def _exact_p95(values: list[float]) -> float:
    """The 95th percentile of sorted data, linear between closest ranks."""
    ordered = sorted(values)
    position = 0.95 * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _whole_ms(n: int, seed: int) -> list[float]:
    """Durations in whole milliseconds: many values lie exactly halfway
    between two centroids, where the tdigest package breaks the tie at
    random."""
    rng = random.Random(seed)
    return [float(round(rng.lognormvariate(5.0, 0.8))) for _ in range(n)]


def _fold_in_chunks(values: list[float], sizes, through_bytes: bool = True) -> LatencySketch:
    """Values folded chunk by chunk, `sizes` giving each chunk's size in
    turn, through the stored bytes as checkpoints fold."""
    result, start = LatencySketch(), 0
    sizes = iter(sizes)
    while start < len(values):
        end = start + next(sizes)
        if through_bytes:
            result = LatencySketch.from_bytes(result.to_bytes())
        result = result.add(values[start:end])
        start = end
    return result


@pytest.fixture
def recluster_often(monkeypatch):
    """Re-clustering past 100 centroids, not 1,000: every fold of a test's
    few thousand values takes that path too."""
    monkeypatch.setattr(sketch, "COMPRESS_CENTROIDS", 100)


# -- accuracy ----------------------------------------------------------------


def test_p95_of_30k_lognormal_durations_folded_in_chunks_is_within_half_a_percent():
    # 30,000 values: ~30 folds into centroids (the benchmark's (e) takes 1M).
    rng = random.Random(20240611)
    values = [rng.lognormvariate(5.0, 0.8) for _ in range(30_000)]
    # The way checkpoints fold: in chunks, through the stored bytes.
    folded = _fold_in_chunks(values, iter(lambda: 1000, None))
    assert folded.count == pytest.approx(len(values))
    exact = _exact_p95(values)
    assert folded.quantile(0.95) == pytest.approx(exact, rel=0.005)
    # Far fewer centroids than values: the stored form stays small.
    assert len(folded.centroids) < 2_000


def test_p95_of_a_sketch_plus_an_unfolded_tail_is_within_half_a_percent():
    rng = random.Random(7)
    values = [rng.lognormvariate(4.0, 1.0) for _ in range(20_000)]
    folded = _fold_in_chunks(values[:19_500], iter(lambda: 1000, None), through_bytes=False)
    combined = folded.quantile(0.95, values[19_500:])
    assert combined == pytest.approx(_exact_p95(values), rel=0.005)


def test_p95_of_whole_millisecond_durations_reclustered_often_is_within_half_a_percent(recluster_often):
    values = _whole_ms(20_000, seed=11)
    folded = _fold_in_chunks(values, iter(lambda: 200, None))
    assert folded.count == pytest.approx(len(values))
    assert folded.quantile(0.95) == pytest.approx(_exact_p95(values), rel=0.005)


# -- determinism -------------------------------------------------------------


@pytest.mark.parametrize("reclustering", ["rarely", "often"])
def test_the_same_values_give_the_same_bytes_whatever_the_global_random_state(reclustering, request):
    if reclustering == "often":
        request.getfixturevalue("recluster_often")
    values = _whole_ms(5_000, seed=3)
    results = set()
    for seed in (1, 2, 12345):
        random.seed(seed)
        results.add(_fold_in_chunks(values, iter(lambda: 200, None)).to_bytes())
    assert len(results) == 1


@pytest.mark.parametrize("reclustering", ["rarely", "often"])
def test_folding_in_any_chunks_gives_the_bytes_of_folding_200_at_a_time(reclustering, request):
    if reclustering == "often":
        request.getfixturevalue("recluster_often")
    values = _whole_ms(3_000, seed=5) + [random.Random(5).lognormvariate(5.0, 0.8) for _ in range(5_000)]
    checkpoint = _fold_in_chunks(values, iter(lambda: 200, None))
    assert len(checkpoint.centroids) < COMPRESS_AT < len(values)  # folds happened
    irregular = random.Random(9)
    for sizes, through_bytes in (
        (iter(lambda: 1, None), False),  # one value at a time
        (iter(lambda: irregular.randint(1, 2_500), None), True),
        (iter(lambda: 100_000, None), True),  # a rebuild's chunk: everything at once
    ):
        assert _fold_in_chunks(values, sizes, through_bytes=through_bytes).to_bytes() == checkpoint.to_bytes()
    assert _fold_in_chunks(values, iter(lambda: 137, None), through_bytes=False).to_bytes() == (
        checkpoint.to_bytes()
    )


def test_a_sketch_stored_past_compress_at_folds_at_its_first_value_in_any_chunks():
    rng = random.Random(4)
    stored = LatencySketch(sorted((rng.uniform(1, 100), 1.0) for _ in range(COMPRESS_AT + 300)))
    one_by_one = stored.add([5.0]).add([6.0]).add([7.0])
    assert len(one_by_one.centroids) < COMPRESS_AT
    assert stored.add([5.0, 6.0, 7.0]).to_bytes() == one_by_one.to_bytes()


def test_folding_keeps_every_count_even_for_centroids_with_equal_means():
    stored = [(1.0, 3.0), (1.0, 2.0), (5.0, 4.0)] + [(float(i), 1.0) for i in range(10, 1510)]
    folded = LatencySketch(stored).add([2.0, 3.0])
    assert folded.count == 3 + 2 + 4 + 1500 + 2
    assert sum(c for _, c in folded.centroids) == folded.count


def test_adding_returns_a_new_sketch_and_leaves_the_old_one_alone():
    first = LatencySketch().add([1.0, 2.0, 3.0])
    before = list(first.centroids)
    second = first.add([100.0] * 10)
    assert first.centroids == before and first.count == 3
    assert second.count == 13


# -- stored format -----------------------------------------------------------


def test_bytes_round_trip_keeps_centroids_count_and_quantiles():
    rng = random.Random(3)
    folded = LatencySketch().add(rng.uniform(1, 500) for _ in range(5_000))
    data = folded.to_bytes()
    assert data.startswith(b"PGS1") and len(data) == 4 + 16 * len(folded.centroids)
    restored = LatencySketch.from_bytes(data)
    assert restored.centroids == folded.centroids
    assert restored.count == folded.count == 5_000
    assert restored.to_bytes() == data
    for q in (0.5, 0.9, 0.95, 0.99):
        assert restored.quantile(q) == folded.quantile(q)
    # memoryview / bytearray, as database drivers hand blobs back.
    assert LatencySketch.from_bytes(memoryview(data)).centroids == folded.centroids
    assert LatencySketch.from_bytes(bytearray(data)).centroids == folded.centroids


def test_the_json_form_of_earlier_versions_is_still_read():
    points = [[1.5, 3.0], [2.25, 1.0], [10.0, 7.5]]
    restored = LatencySketch.from_bytes(json.dumps(points).encode())
    assert restored.centroids == [(1.5, 3.0), (2.25, 1.0), (10.0, 7.5)]
    assert restored.count == 11.5
    assert LatencySketch.from_bytes(restored.to_bytes()).centroids == restored.centroids


# -- quantiles ---------------------------------------------------------------


def test_empty_sketch_has_no_quantile():
    empty = LatencySketch()
    assert empty.quantile(0.95) is None
    assert empty.count == 0
    assert LatencySketch.from_bytes(None).quantile(0.95) is None
    assert LatencySketch.from_bytes(b"").quantile(0.5) is None
    assert empty.add([]) is empty


def test_empty_sketch_with_extra_values_uses_them():
    assert LatencySketch().quantile(0.95, [42.0]) == 42.0


def test_a_single_value_is_every_quantile():
    one = LatencySketch().add([7.5])
    assert [one.quantile(q) for q in (0.0, 0.5, 0.95, 1.0)] == [7.5] * 4


def test_quantiles_0_and_1_are_the_least_and_greatest_mean():
    values = [float(v) for v in range(1, 4_001)]
    random.Random(2).shuffle(values)
    folded = LatencySketch().add(values)
    assert folded.quantile(0.0) == folded.centroids[0][0]
    assert folded.quantile(1.0) == folded.centroids[-1][0]
    assert folded.quantile(0.0, [0.5]) == 0.5
    assert folded.quantile(1.0, [9_999.0]) == 9_999.0


def test_quantiles_interpolate_between_the_midpoints_of_points():
    two = LatencySketch().add([10.0, 20.0])
    # Each value holds half the weight, centred on itself: between their
    # midpoints (ranks 0.5 and 1.5 of 2) the estimate is linear.
    assert two.quantile(0.5) == 15.0
    assert two.quantile(0.625) == 17.5
    assert two.quantile(0.2) == 10.0 and two.quantile(0.8) == 20.0


def test_equal_values_give_that_value_at_every_quantile():
    folded = LatencySketch().add([250.0] * 5_000)
    assert folded.count == 5_000
    assert {folded.quantile(q) for q in (0.0, 0.01, 0.5, 0.95, 0.99, 1.0)} == {250.0}


@pytest.mark.parametrize("q", [-0.01, 1.01, math.nan, math.inf])
def test_a_quantile_outside_0_to_1_is_a_value_error(q):
    with pytest.raises(ValueError, match="outside 0..1"):
        LatencySketch().add([1.0, 2.0]).quantile(q)


# -- the tdigest package -----------------------------------------------------


def test_the_installed_tdigest_is_the_version_pyproject_pins():
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    pin = re.search(r'"tdigest==([^"]+)"', pyproject)
    assert pin, "pyproject.toml no longer pins tdigest exactly: server/sketch.py uses its private surface"
    installed = importlib.metadata.version("tdigest")
    assert installed == pin.group(1), (
        f"tdigest {installed} is installed, pyproject.toml pins {pin.group(1)}: server/sketch.py "
        "uses the package's private surface and a rebuilt checkpoint must match the stored one"
    )


def _surface_problems() -> list[str]:
    """What server/sketch.py relies on in the tdigest package, each checked;
    a description of each thing that is no longer so."""
    problems = []

    def params(function) -> list[str]:
        return list(inspect.signature(function).parameters)

    if params(TDigest)[:2] != ["delta", "K"]:
        problems.append(f"TDigest(delta, K) is now TDigest{inspect.signature(TDigest)}")
    if params(TDigest.update)[:3] != ["self", "x", "w"]:
        problems.append(f"TDigest.update(x, w) is now update{inspect.signature(TDigest.update)}")
    if params(Centroid)[:2] != ["mean", "count"]:
        problems.append(f"Centroid(mean, count) is now Centroid{inspect.signature(Centroid)}")
    if not callable(getattr(TDigest, "_find_closest_centroids", None)):
        problems.append("TDigest._find_closest_centroids, which _Digest overrides, is gone")
    digest = TDigest(delta=1.0, K=math.inf)
    tree = getattr(digest, "C", None)
    if not all(callable(getattr(tree, name, None)) for name in ("insert", "values")):
        problems.append(f"TDigest.C is no longer a tree with insert() and values(): {tree!r}")
        return problems
    if getattr(digest, "n", None) != 0:
        problems.append("a new TDigest no longer has n == 0")

    # Centroids restored into the tree, then a value exactly halfway
    # between them, with room in both: the package draws which one takes
    # it, sketch._Digest always gives it to the upper one.
    def tie(cls) -> tuple:
        restored = cls(delta=1.0, K=math.inf)
        for mean in (0.0, 2.0):
            restored.C.insert(mean, Centroid(mean, 10.0))
        restored.n = 20.0
        restored.update(1.0, 1.0)
        return tuple((c.mean, c.count) for c in restored.C.values())

    package, ours = set(), set()
    state = random.getstate()
    try:
        for seed in range(20):
            random.seed(seed)
            package.add(tie(TDigest))
            ours.add(tie(sketch._Digest))
    finally:
        random.setstate(state)
    if len(ours) != 1 or [c for _, c in next(iter(ours))] != [10.0, 11.0]:
        problems.append(f"a tied value no longer goes to the upper restored centroid: {sorted(ours)}")
    if len(package) != 2:
        problems.append(
            "TDigest.update no longer breaks ties with the global random "
            f"(outcomes over 20 seeds: {sorted(package)}): sketch._Digest may be obsolete"
        )

    # K sets only where the package compresses by itself: past K / delta
    # centroids (100 for K=1), and never for K=inf.
    def grow(k: float) -> tuple[TDigest, list]:
        calls = []
        grown = TDigest(delta=0.01, K=k)
        grown.compress = lambda: calls.append(k)
        for x in random.Random(1).sample(range(10_000), 500):
            grown.update(float(x))
        return grown, calls

    _, calls = grow(1)
    grown, calls_without = grow(math.inf)
    if len(grown) <= 100:
        problems.append(f"500 spread values made only {len(grown)} centroids, too few to test K")
    if not calls:
        problems.append("TDigest no longer compresses by itself past K / delta centroids")
    if calls_without:
        problems.append("TDigest with K=inf still compresses by itself (with the global random)")
    means = [c.mean for c in grown.C.values()]
    if means != sorted(means) or len(means) != len(grown):
        problems.append("TDigest.C.values() no longer gives every centroid, in mean order")
    if grown.n != 500 or sum(c.count for c in grown.C.values()) != pytest.approx(500):
        problems.append(f"TDigest.n ({grown.n!r}) is no longer the total weight of the centroids")
    return problems


def test_the_private_tdigest_surface_the_sketch_relies_on_is_unchanged():
    problems = _surface_problems()
    assert not problems, (
        f"tdigest {importlib.metadata.version('tdigest')} no longer has what server/sketch.py "
        "relies on:\n- " + "\n- ".join(problems)
    )


# -- bucket digests ---------------------------------------------------------------


def _points(data: bytes) -> list[tuple[float, float]]:
    flat = sketch.points_array([data])
    return [(float(m), float(c)) for m, c in flat]


def test_a_digest_keeps_every_count_and_the_sum_in_few_ordered_centroids():
    rng = random.Random(3)
    values = [rng.lognormvariate(7.0, 0.7) for _ in range(1400)]
    stored = LatencySketch().add(values)
    digest = _points(sketch.digest(stored.to_bytes()))
    assert len(digest) <= sketch.DIGEST_COMPRESSION // 2
    assert sum(c for _, c in digest) == len(values)
    assert sum(m * c for m, c in digest) == pytest.approx(math.fsum(values), rel=1e-12)
    assert [m for m, _ in digest] == sorted(m for m, _ in digest)
    # Small centroids in the tails: the least and greatest values stay as they were.
    assert digest[0] == (min(values), 1.0)
    assert digest[-1] == (max(values), 1.0)


def test_a_digest_is_a_function_of_the_sketch_alone():
    rng = random.Random(4)
    values = [rng.lognormvariate(7.0, 0.7) for _ in range(900)]
    one = LatencySketch().add(values).to_bytes()
    chunked = LatencySketch()
    for i in range(0, len(values), 7):
        chunked = chunked.add(values[i : i + 7])
    assert sketch.digest(one) == sketch.digest(chunked.to_bytes())


def test_a_small_sketch_is_its_own_digest():
    points = [(1.0, 1.0), (2.5, 3.0), (7.0, 1.0)]
    assert _points(sketch.digest(LatencySketch(points).to_bytes())) == points
    assert sketch.digest(None) is None and sketch.digest(b"") is None


def test_payload_reads_both_stored_forms():
    points = [(1.0, 2.0), (3.0, 1.0)]
    tagged = LatencySketch(points).to_bytes()
    legacy = json.dumps([[1.0, 2.0], [3.0, 1.0]]).encode()
    assert _points(sketch.payload(tagged)) == _points(sketch.payload(legacy)) == points
    assert sketch.payload(None) == b""


def test_array_quantiles_agree_with_the_sketchs_own():
    rng = random.Random(5)
    stored = LatencySketch().add([rng.lognormvariate(6.0, 0.5) for _ in range(5000)])
    extra = [rng.lognormvariate(6.0, 0.5) for _ in range(300)]
    qs = (0.0, 0.01, 0.5, 0.9, 0.95, 0.99, 1.0)
    flat = sketch.points_array([sketch.payload(stored.to_bytes())], [(v, 1.0) for v in extra])
    got = sketch.array_quantiles(flat, qs)
    for q, value in zip(qs, got, strict=True):
        assert value == pytest.approx(stored.quantile(q, extra), rel=1e-12), q
    assert sketch.array_quantiles(sketch.points_array([]), qs) == [None] * len(qs)
    with pytest.raises(ValueError):
        sketch.array_quantiles(flat, (1.5,))


def test_merged_digests_of_a_week_of_hours_stay_within_the_error_targets():
    """156 hours of ~320 lognormal values, as benchmark (d)'s week holds a
    version at 1M observations: the merged digests' p95 within 0.5% and p99
    within 1% of the exact ones."""
    rng = random.Random(6)
    hours = [[rng.lognormvariate(7.0, 0.7) for _ in range(320)] for _ in range(156)]
    digests = [sketch.digest(LatencySketch().add(hour).to_bytes()) for hour in hours]
    every = sorted(v for hour in hours for v in hour)
    p95, p99 = sketch.array_quantiles(sketch.points_array(digests), (0.95, 0.99))
    assert p95 == pytest.approx(_exact_quantile(every, 0.95), rel=0.005)
    assert p99 == pytest.approx(_exact_quantile(every, 0.99), rel=0.01)


def _exact_quantile(ordered: list[float], q: float) -> float:
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
