"""Agents: named, versioned configurations that link prompts (DESIGN.md
"Agents"). Plain values in, plain values out; errors are DomainErrors.

Which version is current lives in one column (Agent.current_version), and
every create and promote of an agent holds its row (Store.lock_agent): so
exactly one version is current, also under concurrent promotes.

An agent version is measured as a prompt version is: ResolveAgent links the
run's trace to the agent version's id through the same ingestion code as
usage records, and CompareAgentVersions reads the same checkpoints.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime

from peewee import IntegrityError, fn

from . import page_tokens, schemas
from .accounts import Caller
from .analytics import Analytics
from .backends.base import Store
from .errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from .models import Agent, AgentVersion, Prompt, PromptVersion, VersionCheckpoint, utcnow
from .registry import MAX_DESCRIPTION_CHARS, PromptRegistry, VersionView, view_of
from .validation import canonical_trace_id, check_name, check_page_size, check_text, check_version

# AgentKind's numbers.
SIMPLE, CHAIN, MULTI_AGENT, WORKFLOW, COMPOSITE = 1, 2, 3, 4, 5
KINDS = frozenset((SIMPLE, CHAIN, MULTI_AGENT, WORKFLOW, COMPOSITE))
LABEL_RE = re.compile(r"[A-Za-z0-9._-]{1,64}")
MAX_LINKS = 100
MAX_ROLE_CHARS = 64
_CREATE_ATTEMPTS = 8


@dataclass(frozen=True)
class PromptLink:
    prompt_name: str
    role: str = ""
    sort_order: int = 0
    pinned_version: int | None = None


@dataclass(frozen=True)
class AgentConfig:
    kind: int
    model_config: dict | None
    prompts: tuple[PromptLink, ...]
    extra: dict | None


@dataclass(frozen=True)
class AgentVersionView:
    id: str
    agent: str
    version: str
    config: AgentConfig
    input_schema: dict | None
    output_schema: dict | None
    message: str
    is_current: bool
    created_by: str
    create_time: datetime


@dataclass(frozen=True)
class AgentView:
    name: str
    current_version: str
    version_count: int
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True)
class ResolvedPrompt:
    role: str
    sort_order: int
    prompt_version: VersionView
    rendered_text: str


@dataclass(frozen=True)
class AgentVersionMetrics:
    version: str
    total_traces: int
    success_rate: float | None
    avg_cost_usd: float | None
    avg_latency_ms: float | None
    p95_latency_ms: float | None


def _config_json(config: AgentConfig) -> str:
    return schemas.dumps(
        {
            "kind": config.kind,
            "model_config": config.model_config,
            "prompts": [vars(link) for link in config.prompts],
            "extra": config.extra,
        }
    )


def _config_of(text: str) -> AgentConfig:
    value = schemas.loads(text)
    links = tuple(PromptLink(**link) for link in value["prompts"])
    return AgentConfig(value["kind"], value["model_config"], links, value["extra"])


def _view(row: AgentVersion, agent: Agent) -> AgentVersionView:
    return AgentVersionView(
        id=str(row.id),
        agent=agent.name,
        version=row.label,
        config=_config_of(row.config),
        input_schema=schemas.loads(row.input_schema),
        output_schema=schemas.loads(row.output_schema),
        message=row.message,
        is_current=agent.current_version == row.id,
        created_by=row.created_by,
        create_time=row.create_time,
    )


def check_label(label: str, field: str = "version") -> str:
    if not LABEL_RE.fullmatch(label):
        raise InvalidArgument(
            f"{field} {label[:80]!r} is not a version label: 1-64 of A-Z a-z 0-9 . _ -",
            field=field,
            reason="INVALID_VERSION_LABEL",
        )
    return label


def _check_config(config: AgentConfig | None) -> tuple[AgentConfig, str | None]:
    """The config with its links in sort order (ties keep the given order),
    and its model config as stored."""
    if config is None:
        raise InvalidArgument("config is required", field="config", reason="EMPTY_FIELD")
    if config.kind not in KINDS:
        raise InvalidArgument(
            f"config.kind {config.kind} is not an agent kind: use SIMPLE, CHAIN, MULTI_AGENT, WORKFLOW "
            "or COMPOSITE",
            field="config.kind",
            reason="INVALID_KIND",
        )
    links = config.prompts
    if config.kind == SIMPLE and len(links) != 1:
        raise InvalidArgument(
            f"a SIMPLE agent links exactly one prompt, not {len(links)}",
            field="config.prompts",
            reason="SIMPLE_NEEDS_ONE_PROMPT",
        )
    if not links:
        raise InvalidArgument(
            "an agent links at least one prompt", field="config.prompts", reason="EMPTY_FIELD"
        )
    if len(links) > MAX_LINKS:
        raise InvalidArgument(
            f"config.prompts has {len(links)} links; the limit is {MAX_LINKS}",
            field="config.prompts",
            reason="TOO_MANY_PROMPTS",
        )
    for i, link in enumerate(links):
        check_name(link.prompt_name, f"config.prompts[{i}].prompt_name")
        check_text(link.role, f"config.prompts[{i}].role")
        if len(link.role) > MAX_ROLE_CHARS:
            raise InvalidArgument(
                f"config.prompts[{i}].role is over {MAX_ROLE_CHARS} characters",
                field=f"config.prompts[{i}].role",
                reason="TEXT_TOO_LONG",
            )
        if link.pinned_version is not None:
            check_version(link.pinned_version, f"config.prompts[{i}].pinned_version")
    model = schemas.check_model_config(config.model_config, "config.model_config")
    ordered = tuple(sorted(links, key=lambda link: link.sort_order))
    return AgentConfig(config.kind, schemas.loads(model), ordered, config.extra or None), model


class AgentRegistry:
    """Every AgentService operation."""

    def __init__(self, store: Store, prompts: PromptRegistry, analytics: Analytics):
        self.store = store
        self.prompts = prompts
        self.analytics = analytics

    # -- lookups ----------------------------------------------------------

    def _agent(self, caller: Caller, name: str, lock: bool = False) -> Agent:
        if lock:
            agent = self.store.lock_agent(caller.account_id, name)
        else:
            agent = Agent.get_or_none((Agent.account == caller.account_id) & (Agent.name == name))
        if agent is None:
            raise NotFound(f"agent {name!r} not found", field="agent", reason="AGENT_NOT_FOUND")
        return agent

    def _version(self, agent: Agent, label: str | None) -> AgentVersion:
        query = AgentVersion.select().where(AgentVersion.agent == agent)
        if label is None:
            row = query.where(AgentVersion.id == agent.current_version).first()
        else:
            row = query.where(AgentVersion.label == label).first()
        if row is None:
            raise NotFound(
                f"agent {agent.name!r} has no version {label!r}", field="version", reason="VERSION_NOT_FOUND"
            )
        return row

    def _linked_prompt(self, caller: Caller, link: PromptLink, i: int) -> tuple[Prompt, PromptVersion]:
        prompt = Prompt.get_or_none((Prompt.account == caller.account_id) & (Prompt.name == link.prompt_name))
        if prompt is None:
            raise NotFound(
                f"config.prompts[{i}]: prompt {link.prompt_name!r} not found",
                field=f"config.prompts[{i}].prompt_name",
                reason="PROMPT_NOT_FOUND",
            )
        number = prompt.active_version if link.pinned_version is None else link.pinned_version
        row = PromptVersion.get_or_none((PromptVersion.prompt == prompt) & (PromptVersion.version == number))
        if row is None:
            raise NotFound(
                f"config.prompts[{i}]: prompt {link.prompt_name!r} has no version {number}",
                field=f"config.prompts[{i}].pinned_version",
                reason="VERSION_NOT_FOUND",
            )
        return prompt, row

    # -- operations -------------------------------------------------------

    def create_version(
        self,
        caller: Caller,
        agent: str,
        version: str,
        config: AgentConfig | None,
        input_schema: dict | None = None,
        output_schema: dict | None = None,
        message: str = "",
        promote: bool | None = None,
    ) -> AgentVersionView:
        check_name(agent, "agent")
        if version:
            check_label(version)
        config, _ = _check_config(config)
        inputs = schemas.check_schema(input_schema, "input_schema")
        outputs = schemas.check_schema(output_schema, "output_schema")
        check_text(message, "message")
        if len(message) > MAX_DESCRIPTION_CHARS:
            raise InvalidArgument(
                f"message is {len(message)} characters; the limit is {MAX_DESCRIPTION_CHARS}",
                field="message",
                reason="MESSAGE_TOO_LONG",
            )
        for _ in range(_CREATE_ATTEMPTS):
            try:
                with self.store.transaction():
                    return self._create_locked(
                        caller, agent, version, config, inputs, outputs, message, promote
                    )
            except IntegrityError:
                continue  # two first versions of one agent at once: the retry sees the winner
        raise Unavailable(f"too much contention creating a version of agent {agent!r}; try again")

    def _create_locked(self, caller, name, label, config, inputs, outputs, message, promote):
        for i, link in enumerate(config.prompts):
            self._linked_prompt(caller, link, i)
        Agent.insert(account=caller.account_id, name=name).on_conflict_ignore().execute()
        agent = self._agent(caller, name, lock=True)
        count = AgentVersion.select().where(AgentVersion.agent == agent).count()
        label = label or f"v{count + 1}"
        if (
            AgentVersion.select()
            .where((AgentVersion.agent == agent) & (AgentVersion.label == label))
            .exists()
        ):
            raise AlreadyExists(
                f"agent {name!r} has a version {label!r} already; versions are immutable",
                field="version",
                reason="VERSION_EXISTS",
            )
        if promote is False and count == 0:
            raise FailedPrecondition(
                f"the first version of agent {name!r} must be current: leave promote unset or true",
                field="promote",
                reason="FIRST_VERSION_NOT_CURRENT",
            )
        now = utcnow()
        row = AgentVersion.create(
            id=uuid.uuid4(),
            agent=agent,
            label=label,
            number=count + 1,
            config=_config_json(config),
            input_schema=inputs,
            output_schema=outputs,
            message=message,
            created_by=caller.key_id,
            create_time=now,
        )
        # Ingestion locks a version's checkpoint, so it exists from birth.
        VersionCheckpoint.create(version=row.id)
        if promote is not False:
            agent.current_version = row.id
        agent.update_time = now
        Agent.update(current_version=agent.current_version, update_time=now).where(
            Agent.id == agent.id
        ).execute()
        return _view(row, agent)

    def get_version(self, caller: Caller, agent: str, version: str | None = None) -> AgentVersionView:
        check_name(agent, "agent")
        if version is not None:
            check_label(version)
        row_agent = self._agent(caller, agent)
        return _view(self._version(row_agent, version), row_agent)

    def promote(self, caller: Caller, agent: str, version: str) -> AgentVersionView:
        check_name(agent, "agent")
        check_label(version)
        with self.store.transaction():
            row_agent = self._agent(caller, agent, lock=True)
            row = self._version(row_agent, version)
            if row_agent.current_version != row.id:
                row_agent.current_version, row_agent.update_time = row.id, utcnow()
                Agent.update(current_version=row.id, update_time=row_agent.update_time).where(
                    Agent.id == row_agent.id
                ).execute()
        return _view(row, row_agent)

    def list_agents(
        self, caller: Caller, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[AgentView], str]:
        size = check_page_size(page_size, self.prompts.max_page_size)
        scope = {"op": "ListAgents", "account": caller.account_id}
        name_key = self.store.by_code_point(Agent.name)
        query = Agent.select().where(Agent.account == caller.account_id)
        if page_token:
            (after,) = page_tokens.decode(self.prompts.page_token_key, page_token, scope)
            query = query.where(name_key > after)
        agents = list(query.order_by(name_key).limit(size + 1))
        more, agents = len(agents) > size, agents[:size]
        counts = (
            dict(
                AgentVersion.select(AgentVersion.agent, fn.COUNT(AgentVersion.id))
                .where(AgentVersion.agent.in_([a.id for a in agents]))
                .group_by(AgentVersion.agent)
                .tuples()
            )
            if agents
            else {}
        )
        labels = (
            dict(
                AgentVersion.select(AgentVersion.id, AgentVersion.label)
                .where(AgentVersion.id.in_([a.current_version for a in agents]))
                .tuples()
            )
            if agents
            else {}
        )
        views = [
            AgentView(
                a.name, labels.get(a.current_version, ""), counts.get(a.id, 0), a.create_time, a.update_time
            )
            for a in agents
        ]
        token = page_tokens.encode(self.prompts.page_token_key, scope, [agents[-1].name]) if more else ""
        return views, token

    def list_versions(
        self, caller: Caller, agent: str, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[AgentVersionView], str]:
        check_name(agent, "agent")
        size = check_page_size(page_size, self.prompts.max_page_size)
        row_agent = self._agent(caller, agent)
        scope = {"op": "ListAgentVersions", "account": caller.account_id, "agent": agent}
        query = AgentVersion.select().where(AgentVersion.agent == row_agent)
        if page_token:
            (after,) = page_tokens.decode(self.prompts.page_token_key, page_token, scope)
            query = query.where(AgentVersion.number < after)
        rows = list(query.order_by(AgentVersion.number.desc()).limit(size + 1))
        more, rows = len(rows) > size, rows[:size]
        token = page_tokens.encode(self.prompts.page_token_key, scope, [rows[-1].number]) if more else ""
        return [_view(r, row_agent) for r in rows], token

    def resolve(
        self,
        caller: Caller,
        agent: str,
        version: str | None = None,
        trace_id: str = "",
        variables: dict[str, str] | None = None,
    ) -> tuple[AgentVersionView, list[ResolvedPrompt]]:
        """What a run executes now; with a trace id, the trace is linked to
        the agent version and to each resolved prompt version."""
        check_name(agent, "agent")
        if version is not None:
            check_label(version)
        if trace_id:
            canonical_trace_id(trace_id)  # a bad one is refused before any work
        row_agent = self._agent(caller, agent)
        row = self._version(row_agent, version)
        view = _view(row, row_agent)
        if variables:
            schemas.check_variables(row.input_schema, variables)
        resolved = []
        for i, link in enumerate(view.config.prompts):
            prompt, prompt_row = self._linked_prompt(caller, link, i)
            text = self.prompts.render_row(prompt_row, variables) if variables else ""
            resolved.append(ResolvedPrompt(link.role, link.sort_order, view_of(prompt_row, prompt), text))
        if trace_id:
            self.analytics.link_trace(caller, trace_id, [view.id, *(r.prompt_version.id for r in resolved)])
        return view, resolved

    def compare(self, caller: Caller, agent: str) -> list[AgentVersionMetrics]:
        check_name(agent, "agent")
        rows = self.store.agent_comparison(caller.account_id, agent)
        if rows is None:
            raise NotFound(f"agent {agent!r} not found", field="agent", reason="AGENT_NOT_FOUND")
        # All time, with no baseline: the agent versions' own metrics.
        versions = [version for _, version in rows]
        metrics = self.analytics.compare_measured(versions, None, None, None, None, 0.95)
        return [
            AgentVersionMetrics(
                label, m.total_traces, m.success_rate, m.avg_cost_usd, m.avg_latency_ms, m.p95_latency_ms
            )
            for (label, _), m in zip(rows, metrics, strict=True)
        ]
