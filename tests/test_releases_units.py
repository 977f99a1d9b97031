"""The traffic split's arithmetic, without a server: bucket counts follow the
weights, a change of weights moves the fewest buckets, the hash is stable."""

import hashlib
import random

import pytest

from promptgauge.server.errors import InvalidArgument
from promptgauge.server.releases import (
    BUCKETS,
    Split,
    bucket_counts,
    bucket_of,
    check_arms,
    check_label,
    rebalance,
)


def owner_of(arms) -> dict[int, int]:
    """bucket -> version."""
    out = {}
    for arm in arms:
        for start, end in arm.buckets:
            for bucket in range(start, end):
                assert bucket not in out, "a bucket in two arms"
                out[bucket] = arm.version
    return out


def test_bucket_counts_sum_to_all_buckets_in_proportion():
    assert bucket_counts({1: 1, 2: 1, 3: 1}) == {1: 3334, 2: 3333, 3: 3333}
    assert bucket_counts({4: 0, 5: 7}) == {4: 0, 5: BUCKETS}
    assert sum(bucket_counts({1: 2**32 - 1, 2: 1, 3: 12345}).values()) == BUCKETS


def test_bucket_is_a_stable_hash_of_split_and_subject():
    # Fixed by SHA-256, not by this process: every replica and client agrees.
    assert bucket_of("abc", "user-1") == int.from_bytes(
        hashlib.sha256(b"abc\x00user-1").digest()[:8], "big") % BUCKETS


def test_rebalance_moves_exactly_the_buckets_arms_shrank_by():
    rng = random.Random(14)
    split = Split("s", rebalance(None, {1: 1}))
    assert owner_of(split.arms) == dict.fromkeys(range(BUCKETS), 1)
    for _ in range(200):
        versions = rng.sample(range(1, 8), rng.randint(1, 5))
        weights = {v: rng.randint(0, 100) for v in versions}
        if not any(weights.values()):
            weights[versions[0]] = 1
        before = owner_of(split.arms)
        old_counts = {a.version: sum(e - s for s, e in a.buckets) for a in split.arms}
        split = Split("s", rebalance(split, weights))
        after = owner_of(split.arms)
        assert len(after) == BUCKETS
        new_counts = bucket_counts(weights)
        assert {a.version: sum(e - s for s, e in a.buckets) for a in split.arms} == new_counts
        moved = [b for b in range(BUCKETS) if before[b] != after[b]]
        least = sum(max(0, n - new_counts.get(v, 0)) for v, n in old_counts.items())
        assert len(moved) == least
        # A bucket moves only out of an arm that shrank (or left), into one that grew.
        for b in moved:
            assert new_counts.get(before[b], 0) < old_counts[before[b]]
            assert new_counts[after[b]] > old_counts.get(after[b], 0)


def test_choose_finds_every_bucket():
    split = Split("s", rebalance(None, {1: 3, 2: 1}))
    assert {split.choose(f"x{n}") for n in range(200)} == {1, 2}
    assert split.choose("") in (1, 2)


@pytest.mark.parametrize("arms", [[], [(1, 0)], [(1, 1), (1, 2)], [(-1, 1)], [(n, 1) for n in range(1, 12)]])
def test_bad_arms_are_invalid(arms):
    with pytest.raises(InvalidArgument):
        check_arms(arms)


def test_label_rule():
    assert check_label("prod-2_a") == "prod-2_a"
    assert check_label("latest", settable=False) == "latest"
    for bad in ("", "2x", "Prod", "a" * 64, "latest"):
        with pytest.raises(InvalidArgument):
            check_label(bad)
