"""Peewee models: the tables, their keys and indexes, nothing about gRPC.

`db` is a proxy bound at start-up (storage.open_database) so the same models
serve SQLite and PostgreSQL. Uniqueness lives in indexes, never in a
read-then-write.
"""

import datetime

from peewee import (
    SQL,
    AutoField,
    BigAutoField,
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    CompositeKey,
    DatabaseProxy,
    DateTimeField,
    DoubleField,
    ForeignKeyField,
    IntegerField,
    Model,
    SmallIntegerField,
    TextField,
    UUIDField,
)

db = DatabaseProxy()
_ZERO = SQL("DEFAULT 0")


def utcnow() -> datetime.datetime:
    """Naive UTC, the form every timestamp column holds."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


class BaseModel(Model):
    class Meta:
        database = db
        legacy_table_names = False


class Setting(BaseModel):
    """Server-wide values every replica must share: schema version, token key."""

    key = CharField(primary_key=True, max_length=64)
    value = TextField()


class Account(BaseModel):
    id = AutoField()
    name = CharField(max_length=128, unique=True)
    create_time = DateTimeField(default=utcnow)


class ApiKey(BaseModel):
    """An API key, stored as the SHA-256 of the plain key (shown once)."""

    id = CharField(primary_key=True, max_length=32)
    account = ForeignKeyField(Account, backref="api_keys", on_delete="CASCADE")
    key_hash = CharField(max_length=64, unique=True)
    create_time = DateTimeField(default=utcnow)
    revoke_time = DateTimeField(null=True)


class Prompt(BaseModel):
    """A prompt name of an account. `active_version` is the single source of
    which version is active, so "exactly one active" holds by construction."""

    id = AutoField()
    account = ForeignKeyField(Account, backref="prompts", on_delete="CASCADE")
    name = CharField(max_length=128)
    active_version = IntegerField(null=True)
    create_time = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "name"), True),)


class PromptVersion(BaseModel):
    """One immutable version of a prompt template."""

    id = UUIDField(primary_key=True)
    prompt = ForeignKeyField(Prompt, backref="versions", on_delete="CASCADE")
    version = IntegerField()
    template_text = TextField()
    description = TextField(default="")
    parent_version = IntegerField(null=True)
    created_by = CharField(max_length=64)
    create_time = DateTimeField(default=utcnow)
    # JSON texts (NULL when none was given): read whole, never queried into.
    model_config = TextField(null=True)
    input_schema = TextField(null=True)
    output_schema = TextField(null=True)
    # Defaults in the schema too, as the migration adds them: a row written
    # without these columns (by raw SQL, an older replica) is still valid.
    change = SmallIntegerField(default=0, constraints=[SQL("DEFAULT 0")])  # registry.CHANGE_*
    source = CharField(max_length=64, default="", constraints=[SQL("DEFAULT ''")])

    class Meta:
        indexes = ((("prompt", "version"), True),)


class Agent(BaseModel):
    """An agent name of an account. `current_version` is the single source of
    which version is current, so "exactly one current" holds by construction."""

    id = AutoField()
    account = ForeignKeyField(Account, backref="agents", on_delete="CASCADE")
    name = CharField(max_length=128)
    current_version = UUIDField(null=True)
    create_time = DateTimeField(default=utcnow)
    update_time = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "name"), True),)


class AgentVersion(BaseModel):
    """One immutable version of an agent; `number` orders them (1, 2, ...)."""

    id = UUIDField(primary_key=True)
    agent = ForeignKeyField(Agent, backref="versions", on_delete="CASCADE")
    label = CharField(max_length=64)
    number = IntegerField()
    config = TextField()  # JSON: kind, model_config, prompts, extra
    input_schema = TextField(null=True)
    output_schema = TextField(null=True)
    message = TextField(default="")
    created_by = CharField(max_length=64)
    create_time = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("agent", "label"), True), (("agent", "number"), True))


class Trace(BaseModel):
    """An agent run of an account, and its outcome once recorded.

    Every write about a trace (its outcome, a link to it) first locks this
    row, so a link and an outcome arriving at once cannot miss each other."""

    id = BigAutoField()
    account = ForeignKeyField(Account, on_delete="CASCADE")
    trace_id = CharField(max_length=32)  # canonical: 32 lower-case hex digits
    has_outcome = BooleanField(default=False)
    success = BooleanField(null=True)
    total_cost_usd = DoubleField(null=True)
    duration_ms = DoubleField(null=True)
    outcome_time = DateTimeField(null=True)  # when the outcome was received
    end_time = DateTimeField(null=True)  # when the run ended: given, else outcome_time
    input_tokens = BigIntegerField(null=True)
    output_tokens = BigIntegerField(null=True)

    class Meta:
        indexes = ((("account", "trace_id"), True),)


# The analytics tables measure a "version": the id of a prompt version or of
# an agent version (both UUIDs, never equal), so their `version` column has no
# foreign key to either table. Versions are never deleted.


class UsageLink(BaseModel):
    """A trace used a version (at a span, or "" for the whole trace)."""

    id = BigAutoField()
    version = UUIDField(column_name="version_id")
    trace = ForeignKeyField(Trace, on_delete="CASCADE")
    span_id = CharField(max_length=128, default="")
    create_time = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("version", "trace", "span_id"), True), (("trace",), False))


class Observation(BaseModel):
    """Append-only: one row per event that changes a version's metrics, written
    in the transaction that causes it; (version, trace, kind) is unique, so no
    trace counts twice. Checkpoints fold these rows in id order."""

    id = BigAutoField()
    version = UUIDField(column_name="version_id")
    trace = ForeignKeyField(Trace, on_delete="CASCADE")
    kind = SmallIntegerField()  # tally.OBSERVATION_LINKED or OBSERVATION_OUTCOME
    success = BooleanField(null=True)
    total_cost_usd = DoubleField(null=True)
    duration_ms = DoubleField(null=True)
    input_tokens = BigIntegerField(null=True)
    output_tokens = BigIntegerField(null=True)
    # When it counts (tally.Signals): the run's end, or the link's receipt.
    event_time = DateTimeField(null=True)
    # An outcome joining a version after its link: the link's event_time,
    # where the trace stops counting in windows.
    link_time = DateTimeField(null=True)

    class Meta:
        indexes = (
            (("version", "trace", "kind"), True),
            (("version", "id"), False),
            # A window's partial edge hours are read from the rows themselves.
            (("version", "event_time"), False),
            (("version", "link_time"), False),
        )


class VersionCheckpoint(BaseModel):
    """A version's metrics folded up to `last_observation_id`: counters and the
    serialized latency sketch. Derived state, rebuildable from observations.
    The counters are named as tally.Tally's fields: state moves by name."""

    version = UUIDField(primary_key=True, column_name="version_id")
    last_observation_id = BigIntegerField(default=0)
    total_traces = BigIntegerField(default=0)
    outcome_n = BigIntegerField(default=0, constraints=[_ZERO])
    success_n = BigIntegerField(default=0)
    success_true = BigIntegerField(default=0)
    cost_n = BigIntegerField(default=0)
    cost_sum = DoubleField(default=0.0)
    duration_n = BigIntegerField(default=0)
    duration_sum = DoubleField(default=0.0)
    # Added by migration 4, with defaults in the database too: a row inserted
    # naming only the older columns (a script, an older replica) still fits.
    cost_squares = DoubleField(default=0.0, constraints=[_ZERO])
    duration_squares = DoubleField(default=0.0, constraints=[_ZERO])
    input_tokens_n = BigIntegerField(default=0, constraints=[_ZERO])
    input_tokens_sum = BigIntegerField(default=0, constraints=[_ZERO])
    output_tokens_n = BigIntegerField(default=0, constraints=[_ZERO])
    output_tokens_sum = BigIntegerField(default=0, constraints=[_ZERO])
    sketch = BlobField(null=True)
    cost_sketch = BlobField(null=True)


class VersionBucket(BaseModel):
    """A measured version's metrics of one hour of event time: the same
    counters and sketches as its checkpoint, for the observations folded so
    far whose event_time falls in [start_time, start_time + 1 h). Advanced
    by the same fold, under the same guard, so derived and rebuildable alike.

    `version` is a plain UUID, not a foreign key: it holds a prompt
    version's id or an agent version's."""

    version = UUIDField()
    start_time = DateTimeField()
    total_traces = BigIntegerField(default=0)
    outcome_n = BigIntegerField(default=0)
    success_n = BigIntegerField(default=0)
    success_true = BigIntegerField(default=0)
    cost_n = BigIntegerField(default=0)
    cost_sum = DoubleField(default=0.0)
    duration_n = BigIntegerField(default=0)
    duration_sum = DoubleField(default=0.0)
    cost_squares = DoubleField(default=0.0)
    duration_squares = DoubleField(default=0.0)
    input_tokens_n = BigIntegerField(default=0)
    input_tokens_sum = BigIntegerField(default=0)
    output_tokens_n = BigIntegerField(default=0)
    output_tokens_sum = BigIntegerField(default=0)
    sketch = BlobField(null=True)
    cost_sketch = BlobField(null=True)
    # The sketches merged into a few dozen centroids (sketch.digest): what a
    # window too large for exact quantiles reads, instead of every value.
    digest = BlobField(null=True)
    cost_digest = BlobField(null=True)
    # On the row of a day's first hour (00:00 UTC, made with zero counters
    # if that hour has no data): the day's hour digests merged
    # (sketch.merged_digest), so that a week merges 7 of them, not 168.
    day_digest = BlobField(null=True)
    day_cost_digest = BlobField(null=True)

    class Meta:
        primary_key = CompositeKey("version", "start_time")


class PromptLabel(BaseModel):
    """A named pointer at a version of a prompt; moved by SetPromptLabel."""

    id = AutoField()
    prompt = ForeignKeyField(Prompt, backref="labels", on_delete="CASCADE")
    label = CharField(max_length=63)
    version = IntegerField()
    update_time = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("prompt", "label"), True),)


class TrafficSplit(BaseModel):
    """A prompt's traffic split: `arms` is JSON, [[version, weight, [[start,
    end], ...]], ...] in version order (releases.py). `split_id` salts the
    subject hash; it stays while the weights change."""

    prompt = ForeignKeyField(Prompt, primary_key=True, on_delete="CASCADE")
    split_id = CharField(max_length=32)
    arms = TextField()
    update_time = DateTimeField(default=utcnow)


class PromptEvent(BaseModel):
    """Append-only audit history and change feed: one row per change, written
    in the change's transaction. Within an account, ids grow in commit order
    (Store.append_event), so `id` is the feed's sequence."""

    id = BigAutoField()
    account = ForeignKeyField(Account, on_delete="CASCADE")
    prompt = ForeignKeyField(Prompt, on_delete="CASCADE")
    kind = SmallIntegerField()  # releases.EventKind
    version = IntegerField(null=True)
    previous_version = IntegerField(null=True)
    label = CharField(max_length=63, default="")
    split = TextField(null=True)  # the split set: {"split_id", "arms" as TrafficSplit.arms}
    created_by = CharField(max_length=64)
    create_time = DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("account", "id"), False), (("prompt", "id"), False))


MODELS = [Setting, Account, ApiKey, Prompt, PromptVersion]
AGENT_MODELS = [Agent, AgentVersion]
ANALYTICS_MODELS = [Trace, UsageLink, Observation, VersionCheckpoint, VersionBucket]
RELEASE_MODELS = [PromptLabel, TrafficSplit, PromptEvent]
