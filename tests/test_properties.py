"""Bad input at scale: hypothesis fills every field of every request of every
service with arbitrary values (and every method with arbitrary bytes).

For each call: the status is OK or one of the RPC's client-error codes, never
INTERNAL or UNKNOWN; a rejected call leaves the database exactly as it was; a
stream's summary adds up and the data changed by what it says was recorded;
and afterwards the server still answers its health check and a normal call.
"""

import hashlib
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import pytest
from conftest import make_account
from google.protobuf import timestamp_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from hypothesis import given, settings
from hypothesis import strategies as st

from promptgauge.client import PromptGaugeClient
from promptgauge.server import accounts, storage
from promptgauge.server.interceptors import ERROR_DOMAIN
from promptgauge.server.models import (
    Account,
    Agent,
    AgentVersion,
    ApiKey,
    Observation,
    Prompt,
    PromptEvent,
    PromptLabel,
    PromptVersion,
    Setting,
    Trace,
    TrafficSplit,
    UsageLink,
    VersionCheckpoint,
)
from promptgauge.server.settings import Settings
from promptgauge.server.validation import NAME_RE
from promptgauge.v1 import (
    agents_pb2,
    agents_pb2_grpc,
    analytics_pb2,
    analytics_pb2_grpc,
    prompts_pb2,
    prompts_pb2_grpc,
)

C = grpc.StatusCode
MAX_MESSAGE_BYTES = Settings().max_message_bytes
MAX_RECORDS = Settings().max_records_per_message
MAX_ERRORS = Settings().max_stream_errors
TIMEOUT = 60  # a wedged server fails the test; no call should come near this

# Examples per RPC (and twice as many raw payloads): about 30 s for the
# whole file on SQLite, 50 s on PostgreSQL, on two cores.
EXAMPLES = 120

# The codes each RPC documents for a caller's mistake (besides OK). Never
# INTERNAL, UNKNOWN, UNAVAILABLE (no contention here), DEADLINE_EXCEEDED.
# RESOURCE_EXHAUSTED is allowed only where a size limit was really passed:
# see _check_status.
ALLOWED = {
    "CreatePromptVersion": {C.INVALID_ARGUMENT, C.ALREADY_EXISTS, C.NOT_FOUND, C.FAILED_PRECONDITION},
    "ListPrompts": {C.INVALID_ARGUMENT},
    "ListPromptVersions": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "GetPromptVersion": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "ActivatePromptVersion": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "RenderPrompt": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "EditPromptVersion": {C.INVALID_ARGUMENT, C.NOT_FOUND, C.FAILED_PRECONDITION},
    "DiffPromptVersions": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "GetPrompt": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "CreateAgentVersion": {C.INVALID_ARGUMENT, C.ALREADY_EXISTS, C.NOT_FOUND, C.FAILED_PRECONDITION},
    "ListAgents": {C.INVALID_ARGUMENT},
    "ListAgentVersions": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "GetAgentVersion": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "PromoteAgentVersion": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "ResolveAgent": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "CompareAgentVersions": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "RecordTraceOutcome": {C.INVALID_ARGUMENT, C.ALREADY_EXISTS},
    "StreamTraceOutcomes": {C.INVALID_ARGUMENT},
    "RecordUsage": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "StreamUsage": {C.INVALID_ARGUMENT},
    "ComparePromptVersions": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "SetPromptLabel": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "DeletePromptLabel": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "SetTrafficSplit": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "ClearTrafficSplit": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "ResolvePrompt": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "ListPromptHistory": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "WatchPrompts": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "GetVersionTimeSeries": {C.INVALID_ARGUMENT, C.NOT_FOUND},
    "WatchComparison": {C.INVALID_ARGUMENT, C.NOT_FOUND},
}
# Those that render: a rendered text over the message limit is RESOURCE_EXHAUSTED.
RENDERING = {"RenderPrompt", "ResolvePrompt"}
# The codes a rejected record may carry inside an IngestSummary.
RECORD_CODES = {
    "StreamUsage": {C.INVALID_ARGUMENT.value[0], C.NOT_FOUND.value[0]},
    "StreamTraceOutcomes": {C.INVALID_ARGUMENT.value[0], C.ALREADY_EXISTS.value[0]},
}


# -- the account every test owns --------------------------------------------------

# 21,000 placeholders in 63 kB: a template that multiplies a variable's size.
AMPLIFIER = "{a}" * 21_000


@dataclass(frozen=True)
class State:
    """A fingerprint of the database: every table's row count, and a hash of
    every row that belongs to the account (and of the shared settings)."""

    counts: tuple
    owned: tuple  # (table, rows) of the account's tables
    digest: str

    def owned_rows(self, table: str) -> int:
        return dict(self.owned)[table]


def _owned_queries(account_id: int) -> list:
    mine = Prompt.account == account_id
    return [
        ("setting", Setting.select()),
        ("account", Account.select().where(Account.id == account_id)),
        ("api_key", ApiKey.select().where(ApiKey.account == account_id)),
        ("prompt", Prompt.select().where(mine)),
        ("prompt_version", PromptVersion.select().join(Prompt).where(mine)),
        (
            "version_checkpoint",
            VersionCheckpoint.select()
            .join(PromptVersion, on=VersionCheckpoint.version == PromptVersion.id).join(Prompt).where(mine),
        ),
        ("trace", Trace.select().where(Trace.account == account_id)),
        ("outcome", Trace.select().where((Trace.account == account_id) & Trace.has_outcome)),
        ("usage_link", UsageLink.select().join(Trace).where(Trace.account == account_id)),
        ("observation", Observation.select().join(Trace).where(Trace.account == account_id)),
        ("agent", Agent.select().where(Agent.account == account_id)),
        ("agent_version", AgentVersion.select().join(Agent).where(Agent.account == account_id)),
        ("prompt_label", PromptLabel.select().join(Prompt).where(mine)),
        ("traffic_split", TrafficSplit.select().join(Prompt).where(mine)),
        ("prompt_event", PromptEvent.select().where(PromptEvent.account == account_id)),
    ]


def _plain(value):
    # PostgreSQL hands BYTEA back as a memoryview, whose repr is its address.
    return bytes(value) if isinstance(value, memoryview) else value


def fingerprint(account_id: int) -> State:
    models = (Setting, Account, ApiKey, Prompt, PromptVersion, VersionCheckpoint, Trace, UsageLink,
              Observation, Agent, AgentVersion, PromptLabel, TrafficSplit, PromptEvent)
    digest = hashlib.sha256()
    owned = []
    with storage.db.connection_context():
        counts = tuple(m.select().count() for m in models)
        for table, query in _owned_queries(account_id):
            rows = list(query.order_by(query.model._meta.primary_key).tuples())
            owned.append((table, len(rows)))
            digest.update(table.encode())
            for row in rows:
                digest.update(repr(tuple(map(_plain, row))).encode())
    return State(counts, tuple(owned), digest.hexdigest())


@dataclass
class Seeded:
    """A fresh account with prompts, links, outcomes and page tokens to aim at."""

    server: object
    key: str
    account_id: int
    names: list[str] = field(default_factory=list)
    traces: list[str] = field(default_factory=list)
    usages: list = field(default_factory=list)
    outcomes: list = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    @classmethod
    def make(cls, server) -> "Seeded":
        key = make_account("props")
        with storage.db.connection_context():
            account_id = accounts.authenticate(storage.store(), f"Bearer {key}").account_id
        seeded = cls(server, key, account_id)
        with PromptGaugeClient(server.target, key) as pg:
            pg.create_prompt_version("alpha", "Hello {name}, {greeting}!", description="first")
            pg.create_prompt_version("alpha", "Hi {name}", parent_version=1)
            pg.create_prompt_version("alpha", "{{literal}} {name}", activate=False)
            pg.create_prompt_version("beta", "plain text")
            pg.create_prompt_version("amp", AMPLIFIER)
            pg.set_prompt_label("alpha", "production", 2)
            pg.set_traffic_split("beta", {1: 1})
            seeded.names = ["alpha", "beta", "amp"]
            seeded.traces = [str(uuid.uuid4()) for _ in range(4)]
            t = seeded.traces
            usage, outcome = analytics_pb2.UsageRecord, analytics_pb2.TraceOutcome
            seeded.usages = [
                usage(prompt_name="alpha", prompt_version=1, trace_id=t[0], span_id="root"),
                usage(prompt_name="alpha", prompt_version=1, trace_id=t[1]),
                usage(prompt_name="alpha", prompt_version=2, trace_id=t[2]),
            ]
            seeded.outcomes = [
                outcome(trace_id=t[0], success=True, total_cost_usd=0.5, duration_ms=100.0),
                outcome(trace_id=t[3], success=False),
            ]
            assert pg.stream_usage([seeded.usages]).recorded == 3
            assert pg.stream_trace_outcomes([seeded.outcomes]).recorded == 2
            links = [agents_pb2.PromptLink(prompt_name="alpha", role="system"),
                     agents_pb2.PromptLink(prompt_name="beta", sort_order=1, pinned_version=1)]
            config = agents_pb2.AgentConfig(kind=agents_pb2.AGENT_KIND_CHAIN, prompts=links)
            pg.create_agent_version("bot", config, version="1.0.0")
            pg.create_agent_version("bot", config, version="v2", promote=False)
            pg.create_agent_version("other-bot", config)
            seeded.tokens = [
                pg.list_prompts(page_size=1).next_page_token,
                pg.list_prompt_versions("alpha", page_size=1).next_page_token,
                pg.list_agents(page_size=1).next_page_token,
                pg.list_agent_versions("bot", page_size=1).next_page_token,
                pg.list_prompt_history("alpha", page_size=1).next_page_token,
            ]
        assert all(seeded.tokens)
        return seeded

    @property
    def metadata(self):
        return (("authorization", f"Bearer {self.key}"),)

    def state(self) -> State:
        return fingerprint(self.account_id)

    def assert_still_serving(self) -> None:
        with grpc.insecure_channel(self.server.target) as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT
            )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        with PromptGaugeClient(self.server.target, self.key) as pg:
            created = pg.create_prompt_version("after-the-storm", "still {here}")
            assert pg.render_prompt("after-the-storm", {"here": "up"}, version=created.version).text == (
                "still up"
            )
            compared = pg.compare_prompt_versions("alpha").versions
            assert [m.version for m in compared][:3] == [1, 2, 3]


# -- strategies --------------------------------------------------------------------

INT32 = st.integers(-(2**31), 2**31 - 1)
DOUBLES = st.one_of(
    st.floats(),  # NaN, both infinities, -0.0, subnormals, the largest finite values
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 5e-324, 1.7976931348623157e308, -1.0]),
)
# Long strings built by repetition: drawing 200k characters one by one is slow.
HUGE = st.builds(
    lambda s, n: (s * n)[:n],
    st.text(min_size=1, max_size=4),
    st.sampled_from([129, 4097, 65_537, 200_000]),
)
IDENTIFIER = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True)
# characters() alone would draw surrogates, which no proto string can hold.
UNICODE = st.characters(codec="utf-8")
NO_NUL = st.characters(codec="utf-8", exclude_characters="\x00")
TEMPLATES = st.one_of(
    st.sampled_from(["Hello {name}", "{{literal}} {a}{b}", "no variables", AMPLIFIER]),
    st.lists(IDENTIFIER, max_size=30).map(lambda vs: " ".join("{" + v + "}" for v in vs)),
    st.sampled_from([10, 5_000, 60_000]).map(lambda n: "{" + "v" * n + "}"),  # one long variable
)


@dataclass(frozen=True)
class Fields:
    """Strategies for one request's fields. A request is drawn either with
    every field valid (so that calls reach the database: existing names and
    versions, real traces, page tokens) or with each field valid half the
    time and anything else otherwise."""

    valid_only: bool

    def text(self, valid: st.SearchStrategy, *near_valid: st.SearchStrategy) -> st.SearchStrategy:
        """A string: besides near-valid ones, arbitrary unicode (NUL included,
        surrogates excluded: a proto string is UTF-8), empty, and huge."""
        return self.value(valid, st.one_of(*near_valid, st.text(), st.just(""), HUGE))

    def value(self, valid: st.SearchStrategy, arbitrary: st.SearchStrategy) -> st.SearchStrategy:
        return valid if self.valid_only else st.one_of(valid, arbitrary)

    def name(self, s: Seeded) -> st.SearchStrategy:
        return self.text(
            st.sampled_from(s.names), st.just("never-created"), st.from_regex(NAME_RE, fullmatch=True)
        )

    def label(self) -> st.SearchStrategy:
        return self.text(st.sampled_from(["production", "staging"]), st.sampled_from(["latest", "active"]),
                         st.from_regex(r"[a-z][a-z0-9_-]{0,62}", fullmatch=True), st.just("Prod"))

    def arms(self) -> st.SearchStrategy:
        arm = st.builds(prompts_pb2.SplitArm, version=self.version(),
                        weight=self.value(st.integers(0, 100), st.integers(0, 2**32 - 1)))
        return st.lists(arm, min_size=0 if not self.valid_only else 1, max_size=3 if self.valid_only else 12)

    def version(self) -> st.SearchStrategy:
        return self.value(st.integers(1, 3), st.one_of(INT32, st.sampled_from([0, -1, 4, 2**31 - 1])))

    def optional_version(self) -> st.SearchStrategy:
        return st.none() | self.version()

    def amount(self) -> st.SearchStrategy:
        return st.none() | self.value(st.floats(0, 10_000), DOUBLES)

    def page_size(self) -> st.SearchStrategy:
        return self.value(st.integers(0, 3), st.one_of(st.sampled_from([200, 201, -1]), INT32))

    def page_token(self, s: Seeded) -> st.SearchStrategy:
        return self.text(
            st.sampled_from(["", *s.tokens]),
            st.builds(_mutate, st.sampled_from(s.tokens), st.integers(0, 10_000), UNICODE),
            st.sampled_from(s.tokens).map(lambda t: t[:-1]),
        )

    def variables(self) -> st.SearchStrategy:
        keys = self.text(st.sampled_from(["name", "greeting", "a", "b"]))
        some = st.dictionaries(keys, self.text(st.text(max_size=5), st.just("x" * 1000)), max_size=5)
        every = st.builds(  # every variable of the seeded templates, and maybe others
            lambda value, extra: {**extra, **dict.fromkeys(["name", "greeting", "a", "b"], value)},
            self.text(st.text(max_size=20)),
            some,
        )
        return self.value(every, some)

    def agent(self) -> st.SearchStrategy:
        return self.text(
            st.sampled_from(["bot", "other-bot"]), st.just("never-created"),
            st.from_regex(NAME_RE, fullmatch=True),
        )

    def agent_label(self) -> st.SearchStrategy:
        return self.text(st.sampled_from(["1.0.0", "v2", "v3"]),
                         st.from_regex(r"[A-Za-z0-9._-]{1,64}", fullmatch=True))

    def agent_config(self, s: Seeded) -> st.SearchStrategy:
        link = st.builds(
            agents_pb2.PromptLink,
            prompt_name=self.name(s),
            role=self.text(st.sampled_from(["system", ""])),
            sort_order=self.value(st.integers(-2, 2), INT32),
            pinned_version=self.optional_version(),
        )
        kinds = self.value(st.integers(1, 5), st.integers(0, 2**31 - 1))
        return st.builds(agents_pb2.AgentConfig, kind=kinds, prompts=st.lists(link, max_size=3))

    def trace_id(self, s: Seeded) -> st.SearchStrategy:
        return self.text(
            st.one_of(st.sampled_from(s.traces), st.uuids().map(str),
                      st.uuids().map(lambda u: u.hex.upper())),
            st.sampled_from(s.traces).map(str.upper),
            st.uuids().map(lambda u: f" {u} "),
            st.uuids().map(lambda u: "----" + u.hex),  # dashes where a UUID has none
            st.sampled_from(["0" * 32, str(uuid.UUID(int=0))]),
            st.from_regex(r"[0-9a-fA-F-]{30,38}", fullmatch=True),
        )

    def span_id(self) -> st.SearchStrategy:
        printable = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
        return st.none() | self.text(
            st.text(printable, min_size=1, max_size=128),
            st.sampled_from(["a" * 129, " lead", "trail ", "in side"]),
        )

    def outcome(self, s: Seeded) -> st.SearchStrategy:
        return st.one_of(
            st.sampled_from(s.outcomes),  # the same again: a duplicate
            st.builds(
                analytics_pb2.TraceOutcome,
                trace_id=self.trace_id(s),
                success=st.none() | st.booleans(),
                total_cost_usd=self.amount(),
                duration_ms=self.amount(),
                input_tokens=st.none() | st.integers(-(2**63), 2**63 - 1),
                output_tokens=st.none() | st.integers(-5, 10**13),
                end_time=_timestamps(),
            ),
        )

    def usage(self, s: Seeded) -> st.SearchStrategy:
        return st.one_of(
            st.sampled_from(s.usages),  # the same again: a duplicate
            st.builds(
                analytics_pb2.UsageRecord,
                prompt_name=self.name(s),
                prompt_version=self.version(),
                trace_id=self.trace_id(s),
                span_id=self.span_id(),
            ),
        )

    def unless_valid(self, strategy: st.SearchStrategy, absent) -> st.SearchStrategy:
        """A sub-message, sometimes left unset."""
        return self.value(strategy, st.just(absent))


def _mutate(token: str, at: int, char: str) -> str:
    at %= len(token)
    return token[:at] + char + token[at + 1 :]


VALID, ANY = Fields(valid_only=True), Fields(valid_only=False)


def streams(message, field_name: str, items) -> st.SearchStrategy:
    """0-4 messages of 0-8 records, each record valid or not by its own draw;
    sometimes led by one over the per-message record limit, which fails the
    whole stream before anything is stored."""
    records = st.one_of(items(VALID), items(ANY))
    batches = st.lists(st.lists(records, max_size=8), max_size=4)

    def build(batches, oversized):
        msgs = [message(**{field_name: b}) for b in batches]
        # Only small records are copied: the point is the count, not the bytes.
        if oversized and batches and batches[0] and batches[0][0].ByteSize() < 1000:
            msgs[0] = message(**{field_name: [batches[0][0]] * (MAX_RECORDS + 1)})
        return msgs

    return st.builds(build, batches, st.booleans())


# -- the RPCs ----------------------------------------------------------------------


@dataclass(frozen=True)
class Rpc:
    name: str
    service: str
    request_type: type
    kind: str  # "read" changes nothing even when OK; "write"; "stream" (client-streaming);
    # "watch" (server-streaming: its first message is read, then it is cancelled; changes nothing)
    requests: Callable[[Seeded], st.SearchStrategy]
    check_ok: Callable | None = None  # (request, response, before, after) on OK

    @property
    def path(self) -> str:
        return f"/promptgauge.v1.{self.service}/{self.name}"

    def stub_method(self, channel: grpc.Channel):
        stub = {
            "PromptService": prompts_pb2_grpc.PromptServiceStub,
            "AnalyticsService": analytics_pb2_grpc.AnalyticsServiceStub,
            "AgentService": agents_pb2_grpc.AgentServiceStub,
        }[self.service](channel)
        return getattr(stub, self.name)


def _created(request, response, before: State, after: State) -> None:
    v = response.prompt_version
    assert (v.name, v.template_text, v.description) == (
        request.name, request.template_text, request.description
    )
    if request.HasField("version"):
        assert v.version == request.version
    assert v.is_active == (not request.HasField("activate") or request.activate)
    assert after.owned_rows("prompt_version") == before.owned_rows("prompt_version") + 1


def _edited(request, response, before: State, after: State) -> None:
    v = response.prompt_version
    assert (v.name, v.description) == (request.name, request.description)
    assert v.change == prompts_pb2.CHANGE_KIND_EDIT
    assert after.owned_rows("prompt_version") == before.owned_rows("prompt_version") + 1


def _agent_created(request, response, before: State, after: State) -> None:
    v = response.agent_version
    assert (v.agent, v.config.kind) == (request.agent, request.config.kind)
    assert v.is_current == (not request.HasField("promote") or request.promote)
    assert after.owned_rows("agent_version") == before.owned_rows("agent_version") + 1


def _promoted(request, response, before: State, after: State) -> None:
    v = response.agent_version
    assert (v.agent, v.version, v.is_current) == (request.agent, request.version, True)
    assert after.owned_rows("agent_version") == before.owned_rows("agent_version")


def _activated(request, response, before: State, after: State) -> None:
    v = response.prompt_version
    assert (v.name, v.version, v.is_active) == (request.name, request.version, True)
    # Only which version is active may change, and its history event with it.
    events = after.owned_rows("prompt_event") - before.owned_rows("prompt_event")
    assert events in (0, 1)
    unchanged = [o for o in before.owned if o[0] != "prompt_event"]
    assert [o for o in after.owned if o[0] != "prompt_event"] == unchanged


def _one_event(request, response, before: State, after: State) -> None:
    """A change to a label or split writes exactly one history event."""
    assert after.owned_rows("prompt_event") == before.owned_rows("prompt_event") + 1


def _labelled(request, response, before: State, after: State) -> None:
    v = response.prompt_version
    assert (v.name, v.version) == (request.name, request.version) and request.label in v.labels
    assert after.owned_rows("prompt_event") - before.owned_rows("prompt_event") in (0, 1)


def _resolved(request, response, before: State, after: State) -> None:
    assert response.prompt_version.name == request.name
    if not request.trace_id:
        assert after == before
    assert after.owned_rows("prompt_event") == before.owned_rows("prompt_event")


def _usage_recorded(request, response, before: State, after: State) -> None:
    assert response.status == "recorded"
    new_links = after.owned_rows("usage_link") - before.owned_rows("usage_link")
    assert new_links in (0, 1)
    if new_links == 0:  # a repeated link, answered "recorded" too
        assert after == before


def _outcome_recorded(request, response, before: State, after: State) -> None:
    added = after.owned_rows("outcome") - before.owned_rows("outcome")
    if response.status == "duplicate":
        assert after == before
    else:
        assert (response.status, added) == ("recorded", 1)


def _summary_adds_up(rpc_name: str, field_name: str, table: str):
    def check(messages, response, before: State, after: State) -> None:
        summary = response.summary
        sent = sum(len(getattr(m, field_name)) for m in messages)
        assert summary.received == sent
        assert summary.received == summary.recorded + summary.duplicates + summary.rejected
        assert len(summary.errors) == min(summary.rejected, MAX_ERRORS)
        indexes = [e.index for e in summary.errors]
        assert indexes == sorted(set(indexes)) and all(0 <= i < sent for i in indexes)
        assert all(e.code in RECORD_CODES[rpc_name] and e.message for e in summary.errors)
        assert after.owned_rows(table) - before.owned_rows(table) == summary.recorded
        if summary.recorded == 0:
            assert after == before

    return check


def _both(build) -> Callable[[Seeded], st.SearchStrategy]:
    """Requests with every field valid, or with any field arbitrary."""
    return lambda s: st.one_of(build(s, VALID), build(s, ANY))


def _timestamps() -> st.SearchStrategy:
    """Unset, or any seconds and nanos: before 1970, past 9999, the window's bounds reversed."""
    return st.none() | st.builds(timestamp_pb2.Timestamp, seconds=st.integers(-(2**40), 2**40),
                                 nanos=st.integers(0, 999_999_999))


def _comparison_requests(s, f) -> st.SearchStrategy:
    return st.builds(
        analytics_pb2.ComparePromptVersionsRequest, name=f.name(s), view=st.integers(0, 3),
        start_time=_timestamps(), end_time=_timestamps(),
        baseline_version=st.none() | st.integers(-3, 5), confidence_level=st.floats(allow_nan=True),
    )


RPCS = [
    Rpc("CreatePromptVersion", "PromptService", prompts_pb2.CreatePromptVersionRequest, "write",
        _both(lambda s, f: st.builds(
            prompts_pb2.CreatePromptVersionRequest,
            name=f.name(s),
            version=f.optional_version(),
            template_text=f.text(TEMPLATES, st.text(alphabet="{}ab_ 0", max_size=12)),
            description=f.text(st.text(NO_NUL, max_size=50)),
            parent_version=f.optional_version(),
            activate=st.none() | st.booleans(),
        )), _created),
    Rpc("ListPrompts", "PromptService", prompts_pb2.ListPromptsRequest, "read",
        _both(lambda s, f: st.builds(
            prompts_pb2.ListPromptsRequest, page_size=f.page_size(), page_token=f.page_token(s)
        ))),
    Rpc("ListPromptVersions", "PromptService", prompts_pb2.ListPromptVersionsRequest, "read",
        _both(lambda s, f: st.builds(
            prompts_pb2.ListPromptVersionsRequest,
            name=f.name(s), page_size=f.page_size(), page_token=f.page_token(s),
        ))),
    Rpc("GetPromptVersion", "PromptService", prompts_pb2.GetPromptVersionRequest, "read",
        _both(lambda s, f: st.builds(
            prompts_pb2.GetPromptVersionRequest, name=f.name(s), version=f.optional_version()
        ))),
    Rpc("ActivatePromptVersion", "PromptService", prompts_pb2.ActivatePromptVersionRequest, "write",
        _both(lambda s, f: st.builds(
            prompts_pb2.ActivatePromptVersionRequest, name=f.name(s), version=f.version()
        )), _activated),
    Rpc("RenderPrompt", "PromptService", prompts_pb2.RenderPromptRequest, "read",
        lambda s: st.one_of(
            _both(lambda s, f: st.builds(
                prompts_pb2.RenderPromptRequest,
                name=f.name(s), version=f.optional_version(), variables=f.variables(),
            ))(s),
            # The amplifier's one variable, up to the largest request: the
            # rendered text would be far past any message limit.
            st.builds(
                lambda n: prompts_pb2.RenderPromptRequest(name="amp", variables={"a": "y" * n}),
                st.sampled_from([1, 300, 100_000, 4_000_000]),
            ),
        )),
    Rpc("EditPromptVersion", "PromptService", prompts_pb2.EditPromptVersionRequest, "write",
        _both(lambda s, f: st.builds(
            prompts_pb2.EditPromptVersionRequest,
            name=f.name(s),
            base_version=f.optional_version(),
            edits=st.lists(st.builds(
                prompts_pb2.TextEdit,
                old_text=f.text(st.sampled_from(["Hello", "{name}"]), st.text(max_size=8)),
                new_text=f.text(st.text(NO_NUL, max_size=8)),
            ), max_size=3),
            description=f.text(st.text(NO_NUL, max_size=50)),
            activate=st.none() | st.booleans(),
        )), _edited),
    Rpc("DiffPromptVersions", "PromptService", prompts_pb2.DiffPromptVersionsRequest, "read",
        _both(lambda s, f: st.builds(
            prompts_pb2.DiffPromptVersionsRequest, name=f.name(s), from_version=f.version(),
            to_version=f.version(),
        ))),
    Rpc("GetPrompt", "PromptService", prompts_pb2.GetPromptRequest, "read",
        _both(lambda s, f: st.builds(prompts_pb2.GetPromptRequest, name=f.name(s)))),
    Rpc("CreateAgentVersion", "AgentService", agents_pb2.CreateAgentVersionRequest, "write",
        _both(lambda s, f: st.builds(
            agents_pb2.CreateAgentVersionRequest,
            agent=f.agent(), version=st.just("") | f.agent_label(),
            config=f.unless_valid(f.agent_config(s), None),
            message=f.text(st.text(NO_NUL, max_size=20)), promote=st.none() | st.booleans(),
        )), _agent_created),
    Rpc("ListAgents", "AgentService", agents_pb2.ListAgentsRequest, "read",
        _both(lambda s, f: st.builds(
            agents_pb2.ListAgentsRequest, page_size=f.page_size(), page_token=f.page_token(s)
        ))),
    Rpc("ListAgentVersions", "AgentService", agents_pb2.ListAgentVersionsRequest, "read",
        _both(lambda s, f: st.builds(
            agents_pb2.ListAgentVersionsRequest, agent=f.agent(), page_size=f.page_size(),
            page_token=f.page_token(s),
        ))),
    Rpc("GetAgentVersion", "AgentService", agents_pb2.GetAgentVersionRequest, "read",
        _both(lambda s, f: st.builds(
            agents_pb2.GetAgentVersionRequest, agent=f.agent(), version=st.none() | f.agent_label()
        ))),
    Rpc("PromoteAgentVersion", "AgentService", agents_pb2.PromoteAgentVersionRequest, "write",
        _both(lambda s, f: st.builds(
            agents_pb2.PromoteAgentVersionRequest, agent=f.agent(), version=f.agent_label()
        )), _promoted),
    # A resolve with a trace id links it: a write, whose links are checked by tests/test_agents.py.
    Rpc("ResolveAgent", "AgentService", agents_pb2.ResolveAgentRequest, "write",
        _both(lambda s, f: st.builds(
            agents_pb2.ResolveAgentRequest, agent=f.agent(), version=st.none() | f.agent_label(),
            trace_id=st.just("") | f.trace_id(s), variables=f.variables(),
        ))),
    Rpc("CompareAgentVersions", "AgentService", agents_pb2.CompareAgentVersionsRequest, "read",
        _both(lambda s, f: st.builds(agents_pb2.CompareAgentVersionsRequest, agent=f.agent()))),
    Rpc("RecordTraceOutcome", "AnalyticsService", analytics_pb2.RecordTraceOutcomeRequest, "write",
        _both(lambda s, f: st.builds(
            analytics_pb2.RecordTraceOutcomeRequest, outcome=f.unless_valid(f.outcome(s), None)
        )), _outcome_recorded),
    Rpc("StreamTraceOutcomes", "AnalyticsService", analytics_pb2.StreamTraceOutcomesRequest, "stream",
        lambda s: streams(analytics_pb2.StreamTraceOutcomesRequest, "outcomes", lambda f: f.outcome(s)),
        _summary_adds_up("StreamTraceOutcomes", "outcomes", "outcome")),
    Rpc("RecordUsage", "AnalyticsService", analytics_pb2.RecordUsageRequest, "write",
        _both(lambda s, f: st.builds(
            analytics_pb2.RecordUsageRequest, usage=f.unless_valid(f.usage(s), None)
        )), _usage_recorded),
    Rpc("StreamUsage", "AnalyticsService", analytics_pb2.StreamUsageRequest, "stream",
        lambda s: streams(analytics_pb2.StreamUsageRequest, "records", lambda f: f.usage(s)),
        _summary_adds_up("StreamUsage", "records", "usage_link")),
    Rpc("ComparePromptVersions", "AnalyticsService", analytics_pb2.ComparePromptVersionsRequest, "read",
        _both(lambda s, f: _comparison_requests(s, f))),
    Rpc("SetPromptLabel", "PromptService", prompts_pb2.SetPromptLabelRequest, "write",
        _both(lambda s, f: st.builds(
            prompts_pb2.SetPromptLabelRequest, name=f.name(s), label=f.label(), version=f.version()
        )), _labelled),
    Rpc("DeletePromptLabel", "PromptService", prompts_pb2.DeletePromptLabelRequest, "write",
        _both(lambda s, f: st.builds(prompts_pb2.DeletePromptLabelRequest, name=f.name(s), label=f.label())),
        _one_event),
    Rpc("SetTrafficSplit", "PromptService", prompts_pb2.SetTrafficSplitRequest, "write",
        _both(lambda s, f: st.builds(prompts_pb2.SetTrafficSplitRequest, name=f.name(s), arms=f.arms())),
        _one_event),
    Rpc("ClearTrafficSplit", "PromptService", prompts_pb2.ClearTrafficSplitRequest, "write",
        _both(lambda s, f: st.builds(prompts_pb2.ClearTrafficSplitRequest, name=f.name(s))), _one_event),
    Rpc("ResolvePrompt", "PromptService", prompts_pb2.ResolvePromptRequest, "write",
        _both(lambda s, f: st.builds(
            prompts_pb2.ResolvePromptRequest, name=f.name(s),
            subject=f.text(st.text(max_size=20), st.just("s" * 257)),
            label=st.just("") | f.label(), trace_id=st.just("") | f.trace_id(s), variables=f.variables(),
        )), _resolved),
    Rpc("ListPromptHistory", "PromptService", prompts_pb2.ListPromptHistoryRequest, "read",
        _both(lambda s, f: st.builds(
            prompts_pb2.ListPromptHistoryRequest,
            name=f.name(s), page_size=f.page_size(), page_token=f.page_token(s),
        ))),
    Rpc("WatchPrompts", "PromptService", prompts_pb2.WatchPromptsRequest, "watch",
        _both(lambda s, f: st.builds(
            prompts_pb2.WatchPromptsRequest,
            names=st.lists(f.name(s), max_size=3 if f.valid_only else 102),
            after_sequence=f.value(st.integers(0, 50), st.integers(-(2**63), 2**63 - 1)),
        ))),
    Rpc("GetVersionTimeSeries", "AnalyticsService", analytics_pb2.GetVersionTimeSeriesRequest, "read",
        _both(lambda s, f: st.builds(
            analytics_pb2.GetVersionTimeSeriesRequest, name=f.name(s), start_time=_timestamps(),
            end_time=_timestamps(), granularity=st.integers(-1, 3),
        ))),
    Rpc("WatchComparison", "AnalyticsService", analytics_pb2.ComparePromptVersionsRequest, "watch",
        _both(lambda s, f: _comparison_requests(s, f))),
]


def test_every_rpc_of_every_service_is_covered():
    services = [prompts_pb2.DESCRIPTOR.services_by_name["PromptService"],
                analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"],
                agents_pb2.DESCRIPTOR.services_by_name["AgentService"]]
    methods = {(s.name, m.name) for s in services for m in s.methods}
    assert {(rpc.service, rpc.name) for rpc in RPCS} == methods
    assert set(ALLOWED) == {rpc.name for rpc in RPCS}


# -- calling and judging -----------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    code: grpc.StatusCode
    response: object
    error: grpc.RpcError | None


def call(s: Seeded, rpc: Rpc, request, channel: grpc.Channel) -> Outcome:
    method = rpc.stub_method(channel)
    try:
        if rpc.kind == "watch":  # a server stream: its first message, then cancelled
            stream = method(request, timeout=TIMEOUT, metadata=s.metadata)
            try:
                return Outcome(C.OK, next(stream), None)
            finally:
                stream.cancel()
        arg = iter(request) if rpc.kind == "stream" else request
        response = method(arg, timeout=TIMEOUT, metadata=s.metadata)
        return Outcome(C.OK, _first(response) if rpc.kind == "watch" else response, None)
    except grpc.RpcError as error:
        return Outcome(error.code(), None, error)


def _first(stream):
    """A server stream's first message; the stream is then cancelled."""
    try:
        return next(stream)
    finally:
        stream.cancel()


def _error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo | None:
    status = rpc_status.from_call(error)
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info
    return None


def _check_status(rpc_name: str, outcome: Outcome, request_bytes: int) -> None:
    """OK, or an allowed code with a message; the server's own rejections
    carry its ErrorInfo, so a transport failure cannot pass for one."""
    if outcome.code == C.OK:
        return
    message = outcome.error.details()
    assert message, outcome.code
    if outcome.code == C.RESOURCE_EXHAUSTED and request_bytes > MAX_MESSAGE_BYTES:
        return  # gRPC's own receive limit, before the server sees the call
    info = _error_info(outcome.error)
    allowed = ALLOWED[rpc_name] | ({C.RESOURCE_EXHAUSTED} if rpc_name in RENDERING else set())
    assert outcome.code in allowed, (rpc_name, outcome.code, message[:300])
    assert info is not None and info.domain == ERROR_DOMAIN and info.reason, (
        rpc_name, outcome.code, message[:300]
    )


def _partly_stored(rpc: Rpc, request) -> bool:
    """Whether a stream failing at a message over a limit keeps records of the
    messages before it, as designed: such a call is not all-or-nothing."""
    if rpc.kind != "stream":
        return False
    for number, message in enumerate(request):
        items = message.ListFields()[0][1] if message.ListFields() else []
        if message.ByteSize() > MAX_MESSAGE_BYTES or len(items) > MAX_RECORDS:
            return any(m.ListFields() for m in request[:number])
    return False


def _size(rpc: Rpc, request) -> int:
    return max((m.ByteSize() for m in request), default=0) if rpc.kind == "stream" else request.ByteSize()


PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a call's time depends on the machine and the backend
)


@pytest.mark.parametrize("rpc", RPCS, ids=lambda rpc: rpc.name)
def test_arbitrary_requests_get_ok_or_a_client_error_and_rejections_change_nothing(server, rpc):
    s = Seeded.make(server)
    with grpc.insecure_channel(server.target) as channel:

        @PROPERTY_SETTINGS
        @given(request=rpc.requests(s))
        def check(request):
            before = s.state()
            outcome = call(s, rpc, request, channel)
            _check_status(rpc.name, outcome, _size(rpc, request))
            after = s.state()
            if outcome.code != C.OK and _partly_stored(rpc, request):
                return
            if outcome.code != C.OK or rpc.kind in ("read", "watch"):
                assert after == before, (rpc.name, outcome.code)
            elif rpc.check_ok is not None:
                rpc.check_ok(request, outcome.response, before, after)

        check()
    s.assert_still_serving()


# -- raw bytes ----------------------------------------------------------------------


def _raw_call(s: Seeded, rpc: Rpc, payload: bytes, channel: grpc.Channel) -> Outcome:
    factories = {"stream": channel.stream_unary, "watch": channel.unary_stream}
    factory = factories.get(rpc.kind, channel.unary_unary)
    # No serializer: the bytes go on the wire as they are.
    method = factory(rpc.path, request_serializer=None, response_deserializer=None)
    try:
        arg = iter([payload]) if rpc.kind == "stream" else payload
        response = method(arg, timeout=TIMEOUT, metadata=s.metadata)
        return Outcome(C.OK, _first(response) if rpc.kind == "watch" else response, None)
    except grpc.RpcError as error:
        return Outcome(error.code(), None, error)


def _parses(request_type, payload: bytes) -> bool:
    try:
        request_type.FromString(payload)
    except Exception:  # noqa: BLE001 - any failure to parse counts
        return False
    return True


def _flip(data: bytes, at: int, byte: int) -> bytes:
    if not data:
        return bytes([byte])
    at %= len(data)
    return data[:at] + bytes([byte]) + data[at + 1 :]


def _cut(data: bytes, at: int) -> bytes:
    return data[: at % (len(data) + 1)]


def raw_payloads(s: Seeded) -> st.SearchStrategy:
    """(rpc, bytes): arbitrary bytes, a valid request with a byte changed or
    cut short, a string field holding invalid UTF-8, and one over the limit."""
    rpc = st.sampled_from(RPCS)

    def valid_bytes(r: Rpc) -> st.SearchStrategy:
        if r.kind == "stream":
            return r.requests(s).map(lambda msgs: msgs[0].SerializeToString() if msgs else b"")
        return r.requests(s).map(lambda m: m.SerializeToString())

    return st.one_of(
        st.tuples(rpc, st.binary(max_size=300)),
        rpc.flatmap(lambda r: st.tuples(
            st.just(r), st.builds(_flip, valid_bytes(r), st.integers(0, 10_000), st.integers(0, 255)))),
        rpc.flatmap(lambda r: st.tuples(
            st.just(r), st.builds(_cut, valid_bytes(r), st.integers(0, 10_000)))),
        # Field 1 as length-delimited bytes that are not UTF-8 (0xff never is).
        st.tuples(rpc, st.binary(max_size=20).map(lambda b: b"\x0a" + bytes([len(b) + 1]) + b"\xff" + b)),
        st.tuples(rpc, st.just(b"\x0a\x81\x80\x80\x02" + b"a" * (MAX_MESSAGE_BYTES + 1))),
    )


def test_arbitrary_bytes_get_invalid_argument_or_a_client_error_and_change_nothing(server):
    s = Seeded.make(server)
    with grpc.insecure_channel(server.target) as channel:

        @settings(PROPERTY_SETTINGS, max_examples=2 * EXAMPLES)
        @given(raw=raw_payloads(s))
        def check(raw):
            rpc, payload = raw
            before = s.state()
            outcome = _raw_call(s, rpc, payload, channel)
            _check_status(rpc.name, outcome, len(payload))
            if outcome.code != C.OK:
                assert s.state() == before, (rpc.name, outcome.code)
            if not _parses(rpc.request_type, payload):
                assert outcome.code in (
                    (C.INVALID_ARGUMENT, C.RESOURCE_EXHAUSTED)
                    if len(payload) > MAX_MESSAGE_BYTES else (C.INVALID_ARGUMENT,)
                ), (rpc.name, outcome.code)

        check()
    s.assert_still_serving()
