"""What the domain asks of the database: named operations, one implementation
per backend (sqlite.py, postgres.py; what both run alike is written once in
sql.py). The domain (registry, analytics) calls these and never asks which
database it is on; peewee models (models.py) stay the one definition of the
tables and columns.

Every operation runs in the caller's connection and, where it says so, inside
the caller's transaction (`Store.transaction()`).
"""

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from ..models import Agent, Prompt, db
from ..tally import Signals, Tally


class TraceRow(NamedTuple):
    """A trace of an account and its outcome, if recorded."""

    id: int
    trace_id: str
    has_outcome: bool
    success: bool | None
    total_cost_usd: float | None
    duration_ms: float | None
    end_time: datetime | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


class NewObservation(NamedTuple):
    """An observation to append: `signals` joined `version_id` through `trace_pk`."""

    version_id: object
    trace_pk: int
    signals: Signals


class Usage(NamedTuple):
    """A checked usage link: a trace (canonical id) used a prompt version."""

    prompt_name: str
    prompt_version: int
    trace_id: str
    span_id: str  # "" links the trace as a whole


class ApiKeyRow(NamedTuple):
    id: str
    account_id: int
    key_hash: str
    revoke_time: datetime | None


@dataclass
class Checkpoint:
    """A version's metrics folded up to observation `last_observation_id`."""

    last_observation_id: int
    tally: Tally
    sketch: bytes | None
    cost_sketch: bytes | None = None


@dataclass
class Bucket:
    """A version's metrics of the hour of event time from `start_time`."""

    version_id: object
    start_time: datetime
    tally: Tally
    sketch: bytes | None
    cost_sketch: bytes | None
    digest: bytes | None = None  # sketch.digest() of each sketch
    cost_digest: bytes | None = None


@dataclass(frozen=True)
class ComparedVersion:
    """A version of a prompt being compared, with its checkpoint as read."""

    id: object
    version: int
    template_text: str
    checkpoint: Checkpoint | None


class Store(ABC):
    """The operations of one backend on the database bound to models.db."""

    def transaction(self):
        """A transaction around what must be all-or-nothing (nests as a savepoint)."""
        return db.atomic()

    # -- schema and accounts -------------------------------------------------

    @abstractmethod
    def lock_schema(self) -> None:
        """Inside the start-up transaction: replicas starting together queue here."""

    @abstractmethod
    def drop_foreign_keys(self, model, parent) -> None:
        """In the start-up transaction (a migration): drop `model`'s table's
        foreign keys to `parent`'s table, keeping its rows, ids and indexes."""

    @abstractmethod
    def api_key(self, key_hash: str) -> ApiKeyRow | None:
        """The API key with this SHA-256 hash, revoked or not."""

    def keys_changed(self) -> None:
        """In the caller's transaction: tell every replica, once it commits,
        that a key was revoked (their key caches drop what they hold). SQLite
        has no push between processes: replicas poll instead (feed.py)."""
        return None

    # -- prompts ----------------------------------------------------------------

    @abstractmethod
    def append_event(self, account_id: int, prompt_id: int, kind: int, created_by: str, *,
                     version: int | None = None, previous_version: int | None = None, label: str = "",
                     split: str | None = None) -> int:
        """In the caller's transaction: append a history event and return its
        sequence. Within an account, sequences grow in commit order, so a
        reader that has seen sequence n never meets a smaller one later; and
        every replica hears of it once it commits."""

    @abstractmethod
    def lock_prompt(self, account_id: int, name: str) -> Prompt | None:
        """A prompt of an account, its row held until the transaction ends, so
        that writers of one prompt queue and never read a stale highest version."""

    @abstractmethod
    def lock_agent(self, account_id: int, name: str) -> Agent | None:
        """An agent of an account, held like lock_prompt: promotes and creates
        of one agent queue, so exactly one version is current."""

    @abstractmethod
    def by_code_point(self, field):
        """`field` as an ordering by Unicode code point, whatever the
        database's collation (SQLite's default already is)."""

    # -- ingestion --------------------------------------------------------------

    @abstractmethod
    def store_usage(
        self, account_id: int, usages: Sequence[Usage], now: datetime, fold_at: int
    ) -> tuple[list[bool | None], set]:
        """Store usage links, all or nothing: the trace rows (created if new),
        the links, and an observation per newly joined (version, trace), plus
        the outcome's if the trace has one. Returns, per usage, None if its
        version does not exist, else whether its link is new; and the versions
        whose tail may have reached `fold_at`."""

    @abstractmethod
    def store_links(
        self, account_id: int, links: Sequence[tuple[object, str, str]], now: datetime, fold_at: int
    ) -> tuple[list[bool], set]:
        """Store (version id, canonical trace id, span id) links of existing
        versions, all or nothing, as store_usage stores them once it knows
        the versions: whether each link is new, and the versions whose tail
        may have reached `fold_at`."""

    @abstractmethod
    def lock_traces(self, account_id: int, trace_ids: Sequence[str]) -> tuple[dict[str, TraceRow], set[str]]:
        """In the caller's transaction: the rows of these traces, created if
        new and held until it ends, taken in trace_id order (the one lock order
        of every writer); and the ids of those created, where the backend
        knows (a new trace has no links to look up)."""

    @abstractmethod
    def set_outcomes(self, outcomes: Sequence[tuple[int, Signals]], now: datetime) -> None:
        """Record (trace pk, signals) outcomes on their locked trace rows."""

    @abstractmethod
    def linked_versions(self, trace_pks: Sequence[int]) -> list[tuple[object, int, datetime]]:
        """Each distinct (version id, trace pk) linked, for these traces, with
        the time of its first link (its link observation's event time)."""

    @abstractmethod
    def append_observations(self, rows: Sequence[NewObservation], fold_at: int) -> set:
        """In the caller's transaction: append observations, holding their
        versions' checkpoints against a fold while their ids are drawn; return
        the versions whose tail may have reached `fold_at`."""

    # -- checkpoints and comparisons ------------------------------------------

    @abstractmethod
    def tail_size(self, version_id, limit: int) -> int:
        """Observations after a version's checkpoint, counting at most `limit`."""

    @abstractmethod
    def lock_checkpoint(self, version_id) -> Checkpoint | None:
        """In the caller's transaction: a version's checkpoint, held against
        other folds until it ends."""

    @abstractmethod
    def tail(self, version_id, after: int, limit: int) -> list[tuple[int, Signals]]:
        """(id, signals) of a version's observations after id `after`, in id
        order, at most `limit`."""

    @abstractmethod
    def advance_checkpoint(self, version_id, was: int, checkpoint: Checkpoint) -> bool:
        """Store `checkpoint` if the stored one still ends at `was`; whether it did."""

    @abstractmethod
    def reset_checkpoint(self, version_id) -> None:
        """Empty a version's checkpoint, to fold it again from the observations."""

    @abstractmethod
    def comparison(self, account_id: int, name: str) -> tuple[list[ComparedVersion], int | None] | None:
        """A prompt's versions by version, each with its checkpoint, and its
        active version; None if there is no such prompt."""

    @abstractmethod
    def last_folded(self, version_ids: Sequence, lock: str = "") -> dict:
        """Each version's last folded observation id."""

    @abstractmethod
    def checkpoints(self, version_ids: Sequence) -> dict:
        """Each version's checkpoint, by version id."""

    @abstractmethod
    def buckets(self, version_ids: Sequence, start=None, end=None, starts: Sequence = ()) -> list["Bucket"]:
        """The stored buckets of these versions, by start time: those starting
        in [start, end) (None: unbounded), and only those in `starts` if given."""

    @abstractmethod
    def store_buckets(self, buckets: Sequence["Bucket"]) -> None:
        """In a fold's transaction: create or replace these buckets."""

    @abstractmethod
    def bucket_tallies(self, version_ids: Sequence, start, end) -> dict:
        """Version id -> the Tally of its buckets in [start, end) added up
        (in SQL: one row per version, however many hours)."""

    @abstractmethod
    def bucket_sketches(self, version_ids: Sequence, start, end, kind: str,
                        days: tuple | None = None) -> list[tuple[object, bytes | None, bytes | None]]:
        """(version id, latency, cost) of each bucket in [start, end), its
        sketches (`kind` "sketch"); or (`kind` "digest") of each version, its
        digests concatenated: the days' for the buckets in [days[0],
        days[1]) if given, the hours' for the others."""

    @abstractmethod
    def hour_digests(self, version_id, start, end) -> list[tuple[bytes | None, bytes | None]]:
        """(digest, cost digest) of a version's buckets in [start, end), in
        hour order."""

    @abstractmethod
    def store_day_digests(self, version_id, day: datetime, digest: bytes | None,
                          cost_digest: bytes | None) -> None:
        """In a fold's transaction: set a day's digests, on the bucket of its
        first hour (made with zero counters if missing)."""

    @abstractmethod
    def edge(self, version_ids: Sequence, start, end) -> tuple[dict, list[tuple[object, float | None,
                                                                                  float | None]]]:
        """What counts in [start, end) (a window's partial edge hour), from
        the observation rows themselves: version id -> Tally, as
        tally.in_window counts it (summed in SQL), and (version id,
        duration, cost) of each outcome whose event_time is in it."""

    @abstractmethod
    def observed_between(self, version_ids: Sequence, ranges: Sequence[tuple]) -> bool:
        """Whether any observation of these versions has its event_time or
        link_time in any of the [start, end) `ranges`."""

    @abstractmethod
    def agent_comparison(self, account_id: int, agent: str) -> list[tuple[str, ComparedVersion]] | None:
        """An agent's versions, oldest first, as (label, version with its
        checkpoint; its text empty); None if there is no such agent."""

    @abstractmethod
    def tails(self, after: Sequence[tuple[object, int]]) -> list[tuple[object, Signals]]:
        """(version id, signals) of the observations after each (version id,
        last folded id), in id order."""
