"""The dashboard's pages: what each shows, read through the same domain
objects as the RPCs (PromptRegistry, Analytics) and rendered with Jinja2,
every value escaped. Each function is blocking work for one request, run on
a worker thread inside one pooled connection (web.py), never on the loop."""

import difflib
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import jinja2

from .. import accounts, agents, templates
from ..accounts import Caller
from ..agents import AgentRegistry, AgentVersionMetrics, AgentVersionView, AgentView
from ..analytics import Analytics, VersionMetrics
from ..backends.base import Store
from ..errors import DomainError, InvalidArgument, Unauthenticated
from ..models import utcnow
from ..registry import (
    CHANGE_CREATE,
    CHANGE_EDIT,
    CHANGE_MODIFY,
    CHANGE_WRITE,
    EventView,
    PromptRegistry,
    VersionView,
)
from ..releases import EventKind, Split
from ..validation import check_name, check_version
from . import charts
from .sessions import Session


@dataclass(frozen=True)
class Viewer:
    """Who is looking: the signed-in caller, and what every page shows of them."""

    caller: Caller
    account: str
    csrf_token: str


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def usd(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def pp(value: float) -> str:
    """A difference of two rates, in percentage points."""
    return f"{value * 100:+.1f} pp"


def p_value(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def count(value: int) -> str:
    return f"{value:,}"


def utc(value: datetime) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S}"


CHANGE_NAMES = {CHANGE_CREATE: "create", CHANGE_WRITE: "write", CHANGE_EDIT: "edit", CHANGE_MODIFY: "modify"}
AGENT_KINDS = {agents.SIMPLE: "simple", agents.CHAIN: "chain", agents.MULTI_AGENT: "multi-agent",
               agents.WORKFLOW: "workflow", agents.COMPOSITE: "composite"}


def change_kind(value: int) -> str:
    return CHANGE_NAMES.get(value, "-")


def pretty_json(value) -> str:
    """A stored JSON value (a schema, a config's `extra`) for reading: keys
    sorted, since a Struct's map has no order."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


def field_value(view: VersionView, dotted: str) -> str:
    """The value of one of DiffPromptVersions' changed fields
    (`description`, `model_config.temperature`, `input_schema`, ...) on a
    version, as shown: "-" where it is unset."""
    head, _, rest = dotted.partition(".")
    value = getattr(view, head, None)
    if rest:
        value = (value or {}).get(rest)
    if value is None or value == "":
        return "-"
    return value if isinstance(value, str) else pretty_json(value)


HOUR, DAY = timedelta(hours=1), timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """The comparison's window as the page's selector names it: the last
    `span` before now (None: all time), and the time series' bucket size."""

    key: str
    title: str
    span: timedelta | None
    period: timedelta

    def start(self, now: datetime) -> datetime | None:
        return None if self.span is None else now - self.span


WINDOWS = {w.key: w for w in (
    Window("24h", "last 24 hours", timedelta(hours=24), HOUR),
    Window("7d", "last 7 days", timedelta(days=7), HOUR),
    Window("30d", "last 30 days", timedelta(days=30), DAY),
    Window("all", "all time", None, DAY),
)}
DEFAULT_WINDOW = "all"


def window_of(raw: str | None) -> Window:
    """The `window` query parameter: one of WINDOWS' keys (absent: all time)."""
    if raw is None or raw == "":
        return WINDOWS[DEFAULT_WINDOW]
    if raw not in WINDOWS:
        raise InvalidArgument(
            f"window must be one of {', '.join(WINDOWS)}, got {raw[:20]!r}", field="window"
        )
    return WINDOWS[raw]


HISTORY_ROWS = 20
EVENT_WORDS = {
    EventKind.VERSION_CREATED: "created", EventKind.VERSION_ACTIVATED: "activated",
    EventKind.LABEL_SET: "label set", EventKind.LABEL_DELETED: "label deleted",
    EventKind.SPLIT_SET: "split set", EventKind.SPLIT_CLEARED: "split cleared",
}


def shares(split: Split) -> list[tuple[int, int, float]]:
    """A split's arms as (version, weight, share of the traffic)."""
    total = sum(a.weight for a in split.arms)
    return [(a.version, a.weight, a.weight / total if total else 0.0) for a in split.arms]


def event_change(event: EventView) -> str:
    """What an event changed, as "v1 → v2", "production: v2 → v3", "v1 90%, v2 10%"."""
    was = "-" if event.previous_version is None else f"v{event.previous_version}"
    if event.kind == EventKind.VERSION_CREATED:
        return f"v{event.version}"
    if event.kind == EventKind.VERSION_ACTIVATED:
        return f"{was} → v{event.version}"
    if event.kind == EventKind.LABEL_SET:
        return f"{event.label}: {was} → v{event.version}"
    if event.kind == EventKind.LABEL_DELETED:
        return f"{event.label}: {was} → -"
    if event.kind == EventKind.SPLIT_SET and event.split is not None:
        return ", ".join(f"v{v} {share:.0%}" for v, _, share in shares(event.split))
    return "-"


def first_line(text: str, limit: int = 80) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


@dataclass(frozen=True)
class PromptSummary:
    name: str
    active_version: int | None
    latest_version: int
    version_count: int
    latest_create_time: datetime


@dataclass(frozen=True)
class DiffRow:
    """One row of a side-by-side diff; a number is None where that side has no line."""

    kind: str  # equal, change, delete or insert
    left_number: int | None
    left: str
    right_number: int | None
    right: str


def side_by_side(before: str, after: str) -> list[DiffRow]:
    """Lines compared with their endings (a missing final newline is a
    change), shown without them."""
    a = [line.removesuffix("\n") for line in before.splitlines(keepends=True)]
    b = [line.removesuffix("\n") for line in after.splitlines(keepends=True)]
    keys_a, keys_b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    rows = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False).get_opcodes():
        if tag == "equal":
            pairs = zip(range(i1, i2), range(j1, j2), strict=True)
            rows += [DiffRow("equal", i + 1, a[i], j + 1, b[j]) for i, j in pairs]
            continue
        kind = {"replace": "change", "delete": "delete", "insert": "insert"}[tag]
        for i, j in itertools.zip_longest(range(i1, i2), range(j1, j2)):
            rows.append(DiffRow(
                kind,
                None if i is None else i + 1, "" if i is None else a[i],
                None if j is None else j + 1, "" if j is None else b[j],
            ))
    return rows


def unified(name: str, before: VersionView, after: VersionView) -> list[str]:
    return templates.unified_diff(
        before.template_text, after.template_text, f"{name} v{before.version}", f"{name} v{after.version}"
    ).splitlines()


def positive_int(raw: str | None, field: str) -> int | None:
    """A version given in a query or a form: a positive integer, or None when absent."""
    if raw is None or raw == "":
        return None
    if not raw.isascii() or not raw.isdigit() or int(raw) > 2**31 - 1:
        raise InvalidArgument(f"{field} must be a positive integer, got {raw[:20]!r}", field=field)
    return check_version(int(raw), field)


class Pages:
    """Every page, for one server's registry and analytics."""

    def __init__(self, registry: PromptRegistry, analytics: Analytics, store: Store, agents: AgentRegistry):
        self.registry = registry
        self.agents = agents
        self.analytics = analytics
        self.store = store
        self.env = jinja2.Environment(
            loader=jinja2.PackageLoader("promptgauge.server.dashboard", "templates"),
            autoescape=True,  # every template is HTML: stored text is always escaped
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(pct=pct, usd=usd, ms=ms, count=count, pp=pp, p_value=p_value, utc=utc,
                                first_line=first_line,
                                change_kind=change_kind, pretty_json=pretty_json, event_change=event_change,
                                event_kind=lambda k: EVENT_WORDS.get(k, "-"),
                                agent_kind=lambda k: AGENT_KINDS.get(k, "-"))

    def render(self, template: str, viewer: Viewer | None, **values) -> str:
        return self.env.get_template(template).render(viewer=viewer, **values)

    # -- who is looking ---------------------------------------------------

    def viewer(self, session: Session, csrf_token: str) -> Viewer:
        """The signed-in viewer of a session; Unauthenticated once its key is revoked."""
        caller, account = accounts.key_holder(session.key_id)
        if caller.account_id != session.account_id:
            raise Unauthenticated("invalid or revoked API key")
        return Viewer(caller, account, csrf_token)

    def sign_in(self, api_key: str) -> Caller:
        return accounts.authenticate(self.store, f"Bearer {api_key}")

    # -- reads ------------------------------------------------------------

    def _pages(self, fetch: Callable[[str], tuple[list[VersionView], str]]) -> Iterator[VersionView]:
        token = ""
        while True:
            views, token = fetch(token)
            yield from views
            if not token:
                return

    def all_versions(self, caller: Caller) -> Iterator[VersionView]:
        """Every version of the account: name ascending, then version descending."""
        size = self.registry.max_page_size
        return self._pages(lambda token: self.registry.list_all(caller, size, token))

    def versions(self, caller: Caller, name: str) -> list[VersionView]:
        """Every version of a prompt, newest first."""
        size = self.registry.max_page_size
        return list(self._pages(lambda token: self.registry.list_versions(caller, name, size, token)))

    def summaries(self, caller: Caller) -> list[PromptSummary]:
        found = []
        for name, group in itertools.groupby(self.all_versions(caller), key=lambda v: v.name):
            views = list(group)
            active = next((v.version for v in views if v.is_active), None)
            found.append(PromptSummary(
                name, active, views[0].version, len(views), max(v.create_time for v in views)
            ))
        return found

    # -- pages ------------------------------------------------------------

    def prompts_page(self, viewer: Viewer) -> str:
        return self.render("prompts.html", viewer, prompts=self.summaries(viewer.caller))

    def prompt_page(self, viewer: Viewer, name: str, activated: str | None = None,
                    window_text: str | None = None, baseline_text: str | None = None) -> str:
        check_name(name)
        window = window_of(window_text)
        baseline = positive_int(baseline_text, "baseline")
        versions = self.versions(viewer.caller, name)
        now = utcnow()
        start = window.start(now)
        metrics = self.analytics.compare(viewer.caller, name, start_time=start, baseline_version=baseline)
        series = self.analytics.time_series(viewer.caller, name, start, None, window.period)
        active = next((v.version for v in versions if v.is_active), None)
        states, _ = self.registry.states(viewer.caller.account_id, [name])
        split = states[0].split if states else None
        history, more = self.registry.list_history(viewer.caller, name, HISTORY_ROWS)
        labels = {v.version: v.labels for v in versions}
        baseline_version = next((m.version for m in metrics if m.is_baseline), None)
        return self.render(
            "prompt.html", viewer,
            name=name, versions=versions, metrics=metrics, active=active, labels=labels,
            baseline=baseline_version, window=window, windows=list(WINDOWS.values()),
            split=shares(split) if split else None, split_time=split.update_time if split else None,
            history=history, more_history=bool(more),
            activated=_optional_version(activated),
            success_chart=success_chart(metrics), latency_chart=latency_chart(metrics),
            traces_chart=traces_chart(metrics),
            over_time=over_time_charts(series, start, now, window.period),
        )

    def version_page(
        self, viewer: Viewer, name: str, version_text: str, variables: dict[str, str] | None
    ) -> tuple[int, str]:
        """The version's page; with `variables` (the render form was sent),
        the template rendered with them, or why it could not be (status 400)."""
        check_name(name)
        version = positive_int(version_text, "version")
        view = self.registry.get_version(viewer.caller, name, version)
        rendered = problem = None
        if variables is not None:
            try:
                rendered, _ = self.registry.render(viewer.caller, name, variables, view.version)
            except InvalidArgument as error:
                problem = error.message
        page = self.render(
            "version.html", viewer, name=name, view=view, variables=variables or {},
            rendered=rendered, problem=problem,
        )
        return (400 if problem else 200), page

    def diff_page(self, viewer: Viewer, name: str, from_text: str | None, to_text: str | None,
                  layout: str | None) -> str:
        check_name(name)
        versions = self.versions(viewer.caller, name)  # never empty: a prompt is born with a version
        to_version = positive_int(to_text, "to") or versions[0].version
        by_number = {v.version: v for v in versions}
        default_from = by_number.get(to_version, versions[0]).parent_version or versions[-1].version
        from_version = positive_int(from_text, "from") or default_from
        before = self.registry.get_version(viewer.caller, name, from_version)
        after = self.registry.get_version(viewer.caller, name, to_version)
        if layout not in (None, "", "split", "unified"):
            raise InvalidArgument(f"layout must be split or unified, got {layout[:20]!r}", field="layout")
        rows = side_by_side(before.template_text, after.template_text)
        _, changed = self.registry.diff(viewer.caller, name, before.version, after.version)
        fields = [(f, field_value(before, f), field_value(after, f)) for f in changed]
        return self.render(
            "diff.html", viewer, name=name, versions=versions, before=before, after=after,
            layout=layout or "split", rows=rows, unified=unified(name, before, after), fields=fields,
            added=sum(r.right_number is not None and r.kind != "equal" for r in rows),
            removed=sum(r.left_number is not None and r.kind != "equal" for r in rows),
        )

    def confirm_page(self, viewer: Viewer, name: str, version_text: str | None) -> str:
        check_name(name)
        version = positive_int(version_text, "version")
        if version is None:
            raise InvalidArgument("give the version to activate: ?version=N", field="version")
        view = self.registry.get_version(viewer.caller, name, version)
        current = self.registry.get_version(viewer.caller, name)
        metrics = {m.version: m for m in self.analytics.compare(viewer.caller, name)}
        return self.render(
            "confirm.html", viewer, name=name, view=view, current=current,
            target_metrics=metrics.get(view.version), current_metrics=metrics.get(current.version),
        )

    def activate(self, viewer: Viewer, name: str, version_text: str | None) -> int:
        check_name(name)
        version = positive_int(version_text, "version")
        if version is None:
            raise InvalidArgument("version is required", field="version")
        return self.registry.activate(viewer.caller, name, version).version

    # -- agents -----------------------------------------------------------

    def agent_summaries(self, caller: Caller) -> list[AgentView]:
        found, token = [], ""
        while True:
            views, token = self.agents.list_agents(caller, self.registry.max_page_size, token)
            found += views
            if not token:
                return found

    def agent_versions(self, caller: Caller, name: str) -> list[AgentVersionView]:
        """Every version of an agent, newest first."""
        found, token = [], ""
        while True:
            views, token = self.agents.list_versions(caller, name, self.registry.max_page_size, token)
            found += views
            if not token:
                return found

    def agents_page(self, viewer: Viewer) -> str:
        return self.render("agents.html", viewer, agents=self.agent_summaries(viewer.caller))

    def agent_page(self, viewer: Viewer, name: str, promoted: str | None = None) -> str:
        check_name(name, "agent")
        versions = self.agent_versions(viewer.caller, name)
        metrics = self.agents.compare(viewer.caller, name)
        current = next((v for v in versions if v.is_current), versions[0])
        order = _newer_than(versions, current)
        return self.render(
            "agent.html", viewer, name=name, versions=versions, metrics=metrics, current=current,
            newer=order, promoted=promoted if any(v.version == promoted for v in versions) else None,
            success_chart=success_chart(metrics, lambda m: m.version),
            latency_chart=latency_chart(metrics, lambda m: m.version),
        )

    def confirm_promotion_page(self, viewer: Viewer, name: str, label: str | None) -> str:
        check_name(name, "agent")
        if not label:
            raise InvalidArgument("give the version to promote: ?version=LABEL", field="version")
        agents.check_label(label)
        view = self.agents.get_version(viewer.caller, name, label)
        versions = self.agent_versions(viewer.caller, name)
        current = next((v for v in versions if v.is_current), versions[0])
        metrics = {m.version: m for m in self.agents.compare(viewer.caller, name)}
        return self.render(
            "agent_confirm.html", viewer, name=name, view=view, current=current,
            newer=_newer_than(versions, current).get(view.version, False),
            target_metrics=metrics.get(view.version), current_metrics=metrics.get(current.version),
        )

    def promote_agent(self, viewer: Viewer, name: str, label: str | None) -> str:
        check_name(name, "agent")
        if not label:
            raise InvalidArgument("version is required", field="version")
        return self.agents.promote(viewer.caller, name, label).version

    def error_page(self, viewer: Viewer | None, status: int, message: str) -> str:
        return self.render("error.html", viewer, status=status, message=message)

    def sign_in_page(self, csrf_token: str, next_path: str, problem: str | None = None) -> str:
        return self.render("signin.html", None, csrf_token=csrf_token, next_path=next_path, problem=problem)


def _optional_version(raw: str | None) -> int | None:
    try:
        return positive_int(raw, "activated")
    except DomainError:
        return None


def _newer_than(versions: list[AgentVersionView], current: AgentVersionView) -> dict[str, bool]:
    """Per label, whether that version came after the current one (the list
    is newest first): promoting it moves forward, else it rolls back."""
    labels = [v.version for v in versions]
    at = labels.index(current.version)
    return {label: i < at for i, label in enumerate(labels)}


Metrics = VersionMetrics | AgentVersionMetrics


def _version_label(m: Metrics) -> str:
    return f"v{m.version}"


def success_chart(metrics: list[Metrics], label: Callable[[Metrics], str] = _version_label):
    return charts.bar_chart(
        "Success rate by version",
        [(label(m), m.success_rate, f"{pct(m.success_rate)} of {count(m.total_traces)}")
         for m in metrics],
        1.0, lambda v: f"{v:.0%}",
    )


LATENCY_MARKS = ("avg", "p50", "p90", "p95", "p99")


def latency_chart(metrics: list[Metrics], label: Callable[[Metrics], str] = _version_label):
    """Per version, the latency distribution as the sketch gives it: p50,
    p90, p95 and p99 as ticks, the mean as a dot (an agent's comparison has
    only the mean and p95)."""
    rows = []
    for m in metrics:
        values = {name: getattr(m, f"{name}_latency_ms", None) for name in LATENCY_MARKS}
        rows.append((label(m), [(name, v) for name, v in values.items() if v is not None]))
    return charts.distribution_chart("Latency by version", rows, "ms", ms)


def _floor(t: datetime, period: timedelta) -> datetime:
    t = t.replace(minute=0, second=0, microsecond=0)
    return t.replace(hour=0) if period >= DAY else t


def over_time_charts(series: list[tuple[int, list]], start: datetime | None, now: datetime,
                     period: timedelta) -> dict | None:
    """Success rate and p95 latency per version over the window, from
    GetVersionTimeSeries' buckets; None when no bucket has data."""
    firsts = [buckets[0].start_time for _, buckets in series if buckets]
    if not firsts:
        return None
    low = _floor(start, period) if start is not None else min(firsts)
    high = _floor(now, period) + period
    shown = [(f"v{version}", buckets) for version, buckets in series if buckets]

    def points(buckets, field):
        return [(b.start_time, getattr(b, field)) for b in buckets if getattr(b, field) is not None]

    success = [(label, points(b, "success_rate")) for label, b in shown]
    latency = [(label, points(b, "p95_latency_ms")) for label, b in shown]
    top = charts.nice_maximum(max((v for _, pts in latency for _, v in pts), default=0.0))
    return {
        "success": charts.line_chart("Success rate over time", success, low, high, period, 1.0,
                                     lambda v: f"{v:.0%}"),
        "latency": charts.line_chart("P95 latency over time (ms)", latency, low, high, period, top, ms),
    }


def traces_chart(metrics: list[VersionMetrics]):
    top = charts.nice_maximum(max((m.total_traces for m in metrics), default=0))
    return charts.bar_chart(
        "Traces by version",
        [(f"v{m.version}", m.total_traces, count(m.total_traces)) for m in metrics],
        top, lambda v: f"{v:,.0f}",
    )
