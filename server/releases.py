"""Releases, the pure part: label names, event kinds, and the traffic split's
sticky bucket assignment. Nothing here touches the database or gRPC.

A split divides BUCKETS hash buckets between its arms (versions). A subject
falls in bucket SHA-256(split_id, subject) mod BUCKETS, the same on every
replica and in every client. When the weights change, `rebalance` keeps each
arm's buckets up to its new count and hands only the buckets of arms that
shrank (or left) to arms that grew: the fewest subjects possible move, and
none moves between two arms whose shares did not drop.
"""

import enum
import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from .errors import InvalidArgument

BUCKETS = 10_000
MAX_ARMS = 10
MAX_SUBJECT_CHARS = 256
LABEL_RE = re.compile(r"[a-z][a-z0-9_-]{0,62}")
RESERVED_LABELS = frozenset({"latest", "active"})

Range = tuple[int, int]  # half-open [start, end) of buckets


class EventKind(enum.IntEnum):
    """What a history event records; the numbers are the proto's EventKind."""

    VERSION_CREATED = 1
    VERSION_ACTIVATED = 2
    LABEL_SET = 3
    LABEL_DELETED = 4
    SPLIT_SET = 5
    SPLIT_CLEARED = 6


@dataclass(frozen=True)
class Arm:
    version: int
    weight: int
    buckets: tuple[Range, ...] = ()


@dataclass(frozen=True)
class Split:
    split_id: str
    arms: tuple[Arm, ...]  # in version order
    update_time: datetime | None = None

    def to_json(self) -> str:
        return json.dumps([[a.version, a.weight, [list(r) for r in a.buckets]] for a in self.arms])

    @classmethod
    def from_json(cls, split_id: str, text: str, update_time: datetime | None = None) -> "Split":
        arms = tuple(Arm(v, w, tuple((s, e) for s, e in b)) for v, w, b in json.loads(text))
        return cls(split_id, arms, update_time)

    def event_json(self) -> str:
        """The split as a history event keeps it: its id and arms."""
        return json.dumps({"split_id": self.split_id, "arms": json.loads(self.to_json())})

    @classmethod
    def from_event_json(cls, text: str, update_time: datetime | None = None) -> "Split":
        value = json.loads(text)
        return cls.from_json(value["split_id"], json.dumps(value["arms"]), update_time)

    def choose(self, subject: str) -> int:
        """The version of the arm whose buckets hold the subject's bucket; a
        call without a subject gets a random bucket (the weights hold, but it
        is not sticky)."""
        bucket = bucket_of(self.split_id, subject) if subject else secrets.randbelow(BUCKETS)
        for arm in self.arms:
            for start, end in arm.buckets:
                if start <= bucket < end:
                    return arm.version
        raise AssertionError(f"bucket {bucket} is in no arm of split {self.split_id}")


def new_split_id() -> str:
    return secrets.token_hex(16)


def bucket_of(split_id: str, subject: str) -> int:
    """The subject's bucket in a split: a stable hash (never Python's hash(),
    which is salted per process)."""
    digest = hashlib.sha256(f"{split_id}\x00{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def check_label(label: str, field: str = "label", *, settable: bool = True) -> str:
    """A label name: 1-63 of a-z 0-9 _ -, starting with a letter; with
    `settable`, not one of the reserved `latest` and `active`."""
    if not label:
        raise InvalidArgument(f"{field} is required", field=field, reason="EMPTY_FIELD")
    if not LABEL_RE.fullmatch(label):
        shown = label if len(label) <= 40 else label[:40] + "..."
        raise InvalidArgument(
            f"{field} {shown!r} is not a valid label: use 1-63 of a-z 0-9 _ -, starting with a letter",
            field=field,
            reason="INVALID_LABEL",
        )
    if settable and label in RESERVED_LABELS:
        raise InvalidArgument(
            f"{field} {label!r} is reserved and read-only: it always means the "
            f"{'highest' if label == 'latest' else 'active'} version",
            field=field,
            reason="RESERVED_LABEL",
        )
    return label


def check_subject(subject: str) -> str:
    if len(subject) > MAX_SUBJECT_CHARS:
        raise InvalidArgument(
            f"subject is {len(subject)} characters; the limit is {MAX_SUBJECT_CHARS}",
            field="subject",
            reason="SUBJECT_TOO_LONG",
        )
    return subject


def check_arms(arms: Sequence[tuple[int, int]]) -> dict[int, int]:
    """(version, weight) pairs as a version -> weight map, checked."""
    if not arms:
        raise InvalidArgument("arms is required: give 1 to 10 arms", field="arms", reason="EMPTY_FIELD")
    if len(arms) > MAX_ARMS:
        raise InvalidArgument(
            f"a split has at most {MAX_ARMS} arms, got {len(arms)}", field="arms", reason="TOO_MANY_ARMS"
        )
    weights: dict[int, int] = {}
    for n, (version, weight) in enumerate(arms):
        if version <= 0:
            raise InvalidArgument(
                f"arms[{n}].version must be a positive integer, got {version}",
                field=f"arms[{n}].version",
                reason="INVALID_VERSION",
            )
        if version in weights:
            raise InvalidArgument(
                f"arms[{n}].version {version} is in the split twice", field=f"arms[{n}].version",
                reason="DUPLICATE_ARM",
            )
        weights[version] = weight
    if not any(weights.values()):
        raise InvalidArgument("the arms' weights are all zero: give one a weight", field="arms",
                              reason="ZERO_WEIGHTS")
    return weights


def bucket_counts(weights: Mapping[int, int]) -> dict[int, int]:
    """Buckets per version, in proportion to the weights (largest remainder;
    ties go to the lower version), summing to BUCKETS."""
    total = sum(weights.values())
    counts, remainders = {}, []
    for version in sorted(weights):
        counts[version], remainder = divmod(weights[version] * BUCKETS, total)
        remainders.append((-remainder, version))
    for _, version in sorted(remainders)[: BUCKETS - sum(counts.values())]:
        counts[version] += 1
    return counts


def _size(ranges: Sequence[Range]) -> int:
    return sum(end - start for start, end in ranges)


def _first(ranges: Sequence[Range], n: int) -> list[Range]:
    """The first n buckets of sorted ranges."""
    out = []
    for start, end in ranges:
        if n <= 0:
            break
        take = min(n, end - start)
        out.append((start, start + take))
        n -= take
    return out


def _merged(ranges: Sequence[Range]) -> tuple[Range, ...]:
    out: list[Range] = []
    for start, end in sorted(ranges):
        if out and out[-1][1] == start:
            out[-1] = (out[-1][0], end)
        else:
            out.append((start, end))
    return tuple(out)


def _complement(ranges: Sequence[Range]) -> list[Range]:
    out, at = [], 0
    for start, end in _merged(ranges):
        if start > at:
            out.append((at, start))
        at = end
    if at < BUCKETS:
        out.append((at, BUCKETS))
    return out


def rebalance(old: Split | None, weights: Mapping[int, int]) -> tuple[Arm, ...]:
    """The arms for `weights`, moving as few buckets as possible from `old`:
    an arm keeps min(old, new count) of its buckets (its lowest ones), and
    the buckets set free are shared among the arms that grew, in version
    order."""
    counts = bucket_counts(weights)
    kept: dict[int, list[Range]] = {}
    for arm in old.arms if old else ():
        if arm.version in counts:
            kept[arm.version] = _first(_merged(arm.buckets), counts[arm.version])
    free = _complement([r for ranges in kept.values() for r in ranges])
    arms = []
    for version in sorted(counts):
        have = kept.get(version, [])
        need = counts[version] - _size(have)
        got = _first(free, need)
        free = _complement([*_complement(free), *got])
        arms.append(Arm(version, weights[version], _merged([*have, *got])))
    return tuple(arms)
