"""The prompt registry: versions, activation, listing, rendering.

Plain values in, plain values out; errors are DomainErrors. Which version is
active lives in one column (Prompt.active_version), so activating one and
deactivating the previous is a single write, and exactly one version of a
name is active by construction.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from peewee import IntegrityError, fn

from . import page_tokens, releases, schemas, templates
from .accounts import Caller
from .backends.base import Store
from .errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from .models import Prompt, PromptEvent, PromptLabel, PromptVersion, TrafficSplit, VersionCheckpoint, utcnow
from .releases import EventKind, Split
from .storage import setting
from .validation import (
    INT32_MAX,
    MAX_PAGE_SIZE,
    canonical_trace_id,
    check_name,
    check_page_size,
    check_text,
    check_version,
)

MAX_DESCRIPTION_CHARS = 4096
# A rendered text must fit in a response message, beside a few bytes of
# framing and the version number.
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
_RESPONSE_FRAMING_BYTES = 16
# A page of versions must fit in a response message: what a page token and
# the framing may take, and an upper bound of what protobuf adds to each
# field of a version (a tag and a length, or a small number).
_PAGE_FRAMING_BYTES = 2048
_FIELD_BYTES = 16
# A create that keeps losing races (only possible under heavy contention on
# one name) gives up with UNAVAILABLE rather than spin.
_CREATE_ATTEMPTS = 8
MAX_SOURCE_CHARS = 64
MAX_EDITS = 100

# What made a version (ChangeKind's numbers).
CHANGE_CREATE, CHANGE_WRITE, CHANGE_EDIT, CHANGE_MODIFY = 1, 2, 3, 4


@dataclass(frozen=True)
class VersionView:
    id: str
    name: str
    version: int
    template_text: str
    description: str
    is_active: bool
    parent_version: int | None
    created_by: str
    create_time: datetime
    variables: list[str]
    model_config: dict | None = None
    input_schema: dict | None = None
    output_schema: dict | None = None
    change: int = 0
    source: str = ""
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PromptView:
    """A prompt as a whole."""

    name: str
    active_version: int
    latest_version: int
    version_count: int
    create_time: datetime
    update_time: datetime


@dataclass(frozen=True)
class NewVersion:
    """What a new version holds beside its number, worked out under the
    prompt's lock."""

    template_text: str
    parent_version: int | None
    change: int
    model_config: str | None  # the JSON texts as stored
    input_schema: str | None
    output_schema: str | None


def _content(view: VersionView) -> dict:
    """The fields DiffPromptVersions compares beside the text."""
    return {"description": view.description, "model_config": view.model_config,
            "input_schema": view.input_schema, "output_schema": view.output_schema, "source": view.source}


@dataclass(frozen=True)
class EventView:
    sequence: int
    kind: EventKind
    name: str
    version: int | None
    previous_version: int | None
    label: str
    created_by: str
    create_time: datetime
    split: Split | None


@dataclass(frozen=True)
class PromptStateView:
    """What a prompt resolves to now, as of feed `sequence`."""

    name: str
    active_version: int
    latest_version: int
    labels: dict[str, int]
    split: Split | None
    sequence: int


def encoded_size(view: VersionView) -> int:
    """At least the bytes of `view` as a PromptVersion in a response message."""
    texts = (view.id, view.name, view.template_text, view.description, view.created_by, *view.variables,
             view.source, *view.labels)
    # The JSON texts bound what protobuf's Struct encoding takes, near enough.
    extra = sum(len(schemas.dumps(v).encode()) * 2 for v in (view.model_config, view.input_schema,
                                                          view.output_schema) if v)
    return sum(len(t.encode()) for t in texts) + extra + _FIELD_BYTES * (
        17 + len(view.variables) + len(view.labels)
    )


def _labels_of(prompt_ids: Sequence[int]) -> dict[tuple[int, int], list[str]]:
    """(prompt id, version) -> the labels on it, in name order."""
    out: dict[tuple[int, int], list[str]] = {}
    if not prompt_ids:
        return out
    query = (PromptLabel.select(PromptLabel.prompt, PromptLabel.version, PromptLabel.label)
             .where(PromptLabel.prompt.in_(sorted(set(prompt_ids)))).order_by(PromptLabel.label).tuples())
    for prompt_id, version, label in query:
        out.setdefault((prompt_id, version), []).append(label)
    return out


def _event_view(row: PromptEvent, name: str) -> EventView:
    split = Split.from_event_json(row.split, row.create_time) if row.split else None
    return EventView(row.id, EventKind(row.kind), name, row.version, row.previous_version, row.label,
                     row.created_by, row.create_time, split)


def _view(
    row: PromptVersion, name: str, active_version: int | None, labels: Sequence[str] = ()
) -> VersionView:
    return VersionView(
        id=str(row.id),
        name=name,
        version=row.version,
        template_text=row.template_text,
        description=row.description,
        is_active=row.version == active_version,
        parent_version=row.parent_version,
        created_by=row.created_by,
        create_time=row.create_time,
        variables=templates.parse(row.template_text).variables,
        model_config=schemas.loads(row.model_config),
        input_schema=schemas.loads(row.input_schema),
        output_schema=schemas.loads(row.output_schema),
        change=row.change,
        source=row.source,
        labels=list(labels),
    )


def view_of(row: PromptVersion, prompt: Prompt) -> VersionView:
    """A version row of `prompt` as callers see it."""
    return _view(row, prompt.name, prompt.active_version)


class PromptRegistry:
    """Every PromptService operation, for one server's limits."""

    def __init__(
        self,
        store: Store,
        max_template_bytes: int,
        max_page_size: int = MAX_PAGE_SIZE,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        link_trace: Callable[[Caller, str, list], None] | None = None,
        on_change: Callable[[int], None] | None = None,
    ):
        self.store = store
        # ResolvePrompt's usage link: Analytics.link_trace, with the version
        # already in hand (as ResolveAgent links its versions).
        self.link_trace = link_trace
        # Called with the account id after a change commits (the change feed).
        self.on_change = on_change or (lambda account_id: None)
        self.max_template_bytes = max_template_bytes
        self.max_page_size = max_page_size
        self.max_rendered_bytes = max_message_bytes - _RESPONSE_FRAMING_BYTES
        self.max_page_bytes = max_message_bytes - _PAGE_FRAMING_BYTES
        self._page_token_key: bytes | None = None

    @property
    def page_token_key(self) -> bytes:
        # Read on first use, inside an RPC: a server may start before its
        # database answers (see app.DatabaseHealth).
        if self._page_token_key is None:
            self._page_token_key = bytes.fromhex(setting("page_token_key"))
        return self._page_token_key

    # -- lookups ----------------------------------------------------------

    def _prompt(self, caller: Caller, name: str, lock: bool = False) -> Prompt:
        """A prompt of the caller's; with `lock`, held until the transaction ends."""
        if lock:
            prompt = self.store.lock_prompt(caller.account_id, name)
        else:
            prompt = Prompt.get_or_none((Prompt.account == caller.account_id) & (Prompt.name == name))
        if prompt is None:
            raise NotFound(f"prompt {name!r} not found", field="name", reason="PROMPT_NOT_FOUND")
        return prompt

    def _version(self, prompt: Prompt, version: int | None, field: str = "version") -> PromptVersion:
        number = prompt.active_version if version is None else version
        row = PromptVersion.get_or_none(
            (PromptVersion.prompt == prompt) & (PromptVersion.version == number)
        )
        if row is None:
            raise NotFound(
                f"prompt {prompt.name!r} has no version {number}",
                field=field,
                reason="VERSION_NOT_FOUND",
            )
        return row

    # -- operations -------------------------------------------------------

    def _check_texts(self, template_text: str, description: str, source: str) -> None:
        if not template_text:
            raise InvalidArgument("template_text is required", field="template_text", reason="EMPTY_FIELD")
        size = len(template_text.encode())
        if size > self.max_template_bytes:
            raise InvalidArgument(
                f"template_text is {size} bytes; the limit is {self.max_template_bytes}",
                field="template_text",
                reason="TEMPLATE_TOO_LARGE",
            )
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise InvalidArgument(
                f"description is {len(description)} characters; the limit is {MAX_DESCRIPTION_CHARS}",
                field="description",
                reason="DESCRIPTION_TOO_LONG",
            )
        if len(source) > MAX_SOURCE_CHARS:
            raise InvalidArgument(
                f"source is {len(source)} characters; the limit is {MAX_SOURCE_CHARS}",
                field="source",
                reason="SOURCE_TOO_LONG",
            )
        check_text(template_text, "template_text")
        check_text(description, "description")
        check_text(source, "source")
        templates.parse(template_text)

    def create_version(
        self,
        caller: Caller,
        name: str,
        template_text: str,
        description: str = "",
        version: int | None = None,
        parent_version: int | None = None,
        activate: bool | None = None,
        model_config: dict | None = None,
        input_schema: dict | None = None,
        output_schema: dict | None = None,
        source: str = "",
    ) -> VersionView:
        check_name(name)
        if version is not None:
            check_version(version)
        if parent_version is not None:
            check_version(parent_version, "parent_version")
        self._check_texts(template_text, description, source)
        config = schemas.check_model_config(model_config)
        inputs = schemas.check_schema(input_schema, "input_schema")
        outputs = schemas.check_schema(output_schema, "output_schema")

        def build(prompt: Prompt, first: bool) -> NewVersion:
            if first:
                if parent_version is not None:  # no version yet: not found
                    self._version(prompt, parent_version, field="parent_version")
                return NewVersion(template_text, None, CHANGE_CREATE, config, inputs, outputs)
            # Left out, the parent is the version active now: no gaps in the lineage.
            parent = self._version(prompt, parent_version, field="parent_version")
            change = CHANGE_MODIFY if parent.template_text == template_text else CHANGE_WRITE
            return NewVersion(template_text, parent.version, change, config, inputs, outputs)

        return self._new_version(caller, name, build, description, version, activate, source)

    def edit_version(
        self,
        caller: Caller,
        name: str,
        edits: Sequence[tuple[str, str]],
        base_version: int | None = None,
        description: str = "",
        activate: bool | None = None,
        source: str = "",
    ) -> VersionView:
        """A new version from exact-match (old_text, new_text) edits of a base
        version's text, applied in order; its parent is the base."""
        check_name(name)
        if base_version is not None:
            check_version(base_version, "base_version")
        if not edits:
            raise InvalidArgument("edits must hold at least one edit", field="edits", reason="EMPTY_FIELD")
        if len(edits) > MAX_EDITS:
            raise InvalidArgument(f"{len(edits)} edits; the limit is {MAX_EDITS}", field="edits",
                                  reason="TOO_MANY_EDITS")
        for i, (old_text, new_text) in enumerate(edits):
            if not old_text:
                raise InvalidArgument(f"edits[{i}].old_text is empty", field=f"edits[{i}].old_text",
                                      reason="EMPTY_FIELD")
            check_text(old_text, f"edits[{i}].old_text")
            check_text(new_text, f"edits[{i}].new_text")

        def build(prompt: Prompt, first: bool) -> NewVersion:
            base = self._version(prompt, base_version, field="base_version")
            text = base.template_text
            for i, (old_text, new_text) in enumerate(edits):
                count = text.count(old_text)
                if count != 1:
                    raise FailedPrecondition(
                        f"edits[{i}].old_text occurs {count} times in the text of version "
                        f"{base.version} as edits before it left it; it must occur exactly once",
                        field=f"edits[{i}].old_text",
                        reason="EDIT_NOT_UNIQUE" if count else "EDIT_NOT_FOUND",
                    )
                text = text.replace(old_text, new_text, 1)
            if text == base.template_text:
                raise FailedPrecondition(
                    f"the edits leave the text of version {base.version} unchanged",
                    field="edits", reason="NOTHING_CHANGED",
                )
            self._check_texts(text, description, source)
            return NewVersion(text, base.version, CHANGE_EDIT, base.model_config, base.input_schema,
                              base.output_schema)

        self._check_texts("-", description, source)
        return self._new_version(caller, name, build, description, None, activate, source,
                                 must_exist=True)

    def _new_version(
        self,
        caller: Caller,
        name: str,
        build: Callable[[Prompt, bool], NewVersion],
        description: str,
        version: int | None,
        activate: bool | None,
        source: str,
        must_exist: bool = False,
    ) -> VersionView:
        """The one way a version is created: `build` works out its text and
        lineage under the prompt's lock (it gets the prompt and whether this
        is its first version)."""
        for _ in range(_CREATE_ATTEMPTS):
            try:
                with self.store.transaction():
                    view = self._create_locked(
                        caller, name, build, description, version, activate, source, must_exist
                    )
                self.on_change(caller.account_id)
                return view
            except IntegrityError:
                # Lost a race that the row lock could not prevent (two first
                # versions of one name at once): the retry sees the winner.
                continue
        raise Unavailable(f"too much contention creating a version of {name!r}; try again")

    def _create_locked(
        self, caller, name, build, description, version, activate, source, must_exist
    ) -> VersionView:
        if not must_exist:
            Prompt.insert(account=caller.account_id, name=name).on_conflict_ignore().execute()
        # Creates of one name queue on this row lock (PostgreSQL) or on the
        # database write lock (SQLite), so "highest + 1" is never read stale.
        prompt = self._prompt(caller, name, lock=True)
        highest = (
            PromptVersion.select(PromptVersion.version)
            .where(PromptVersion.prompt == prompt)
            .order_by(PromptVersion.version.desc())
            .scalar()
        )
        if version is None:
            version = (highest or 0) + 1
            if version > INT32_MAX:
                raise FailedPrecondition(
                    f"prompt {name!r} has reached the highest version number", field="version"
                )
        elif PromptVersion.select().where(
            (PromptVersion.prompt == prompt) & (PromptVersion.version == version)
        ).exists():
            raise AlreadyExists(
                f"prompt {name!r} version {version} exists already; versions are immutable",
                field="version",
                reason="VERSION_EXISTS",
            )
        new = build(prompt, highest is None)
        if activate is False and highest is None:
            raise FailedPrecondition(
                f"the first version of {name!r} must be active: leave activate unset or true",
                field="activate",
                reason="FIRST_VERSION_INACTIVE",
            )
        row = PromptVersion.create(
            id=uuid.uuid4(),
            prompt=prompt,
            version=version,
            template_text=new.template_text,
            description=description,
            parent_version=new.parent_version,
            created_by=caller.key_id,
            model_config=new.model_config,
            input_schema=new.input_schema,
            output_schema=new.output_schema,
            change=new.change,
            source=source,
        )
        # Ingestion locks a version's checkpoint, so it exists from birth.
        VersionCheckpoint.create(version=row.id)
        self.store.append_event(caller.account_id, prompt.id, EventKind.VERSION_CREATED, caller.key_id,
                                version=version)
        if activate is not False:
            self._set_active(caller, prompt, version)
        return _view(row, name, prompt.active_version)

    def _set_active(self, caller: Caller, prompt: Prompt, version: int) -> None:
        """In the caller's transaction, with the prompt locked: make `version`
        the active one, with its event (none if it is active already)."""
        if prompt.active_version == version:
            return
        previous, prompt.active_version = prompt.active_version, version
        Prompt.update(active_version=version).where(Prompt.id == prompt.id).execute()
        self.store.append_event(caller.account_id, prompt.id, EventKind.VERSION_ACTIVATED, caller.key_id,
                                version=version, previous_version=previous)

    def _labelled(self, row: PromptVersion, name: str, active_version: int | None) -> VersionView:
        labels = _labels_of([row.prompt_id]).get((row.prompt_id, row.version), ())
        return _view(row, name, active_version, labels)

    def _by_label(self, prompt: Prompt, label: str) -> int:
        """The version a label points at (`latest` and `active` included)."""
        releases.check_label(label, settable=False)
        if label == "active":
            return prompt.active_version
        if label == "latest":
            return (PromptVersion.select(PromptVersion.version).where(PromptVersion.prompt == prompt)
                    .order_by(PromptVersion.version.desc()).scalar())
        version = (PromptLabel.select(PromptLabel.version)
                   .where((PromptLabel.prompt == prompt) & (PromptLabel.label == label)).scalar())
        if version is None:
            raise NotFound(f"prompt {prompt.name!r} has no label {label!r}", field="label",
                           reason="LABEL_NOT_FOUND")
        return version

    def _chosen(
        self, caller: Caller, name: str, version: int | None, label: str
    ) -> tuple[Prompt, PromptVersion]:
        """The prompt and the version asked for by number, label or neither (the active one)."""
        check_name(name)
        if version is not None:
            check_version(version)
            if label:
                raise InvalidArgument("give a version or a label, not both", field="label",
                                      reason="VERSION_AND_LABEL")
        elif label:
            releases.check_label(label, settable=False)
        prompt = self._prompt(caller, name)
        if label:
            return prompt, self._version(prompt, self._by_label(prompt, label), field="label")
        return prompt, self._version(prompt, version)

    def get_version(
        self, caller: Caller, name: str, version: int | None = None, label: str = ""
    ) -> VersionView:
        prompt, row = self._chosen(caller, name, version, label)
        return self._labelled(row, name, prompt.active_version)

    def activate(self, caller: Caller, name: str, version: int) -> VersionView:
        check_name(name)
        check_version(version)
        with self.store.transaction():
            prompt = self._prompt(caller, name, lock=True)
            row = self._version(prompt, version)
            self._set_active(caller, prompt, version)
        self.on_change(caller.account_id)
        return self._labelled(row, name, version)

    def render(
        self, caller: Caller, name: str, variables: dict[str, str], version: int | None = None,
        label: str = "",
    ) -> tuple[str, int]:
        _, row = self._chosen(caller, name, version, label)
        return self.render_row(row, variables), row.version

    def render_row(self, row: PromptVersion, variables: dict[str, str]) -> str:
        """A version's text filled in, its variables checked against its input schema first."""
        schemas.check_variables(row.input_schema, variables)
        return templates.parse(row.template_text).render(variables, self.max_rendered_bytes)

    def diff(self, caller: Caller, name: str, from_version: int, to_version: int) -> tuple[str, list[str]]:
        """A unified diff of two versions' templates and the names of the
        other fields that differ."""
        check_name(name)
        check_version(from_version, "from_version")
        check_version(to_version, "to_version")
        prompt = self._prompt(caller, name)
        before = _view(self._version(prompt, from_version, "from_version"), name, prompt.active_version)
        after = _view(self._version(prompt, to_version, "to_version"), name, prompt.active_version)
        diff = templates.unified_diff(
            before.template_text, after.template_text, f"{name} v{from_version}", f"{name} v{to_version}"
        )
        return diff, schemas.changed_fields(_content(before), _content(after))

    def get_prompt(self, caller: Caller, name: str) -> PromptView:
        check_name(name)
        prompt = self._prompt(caller, name)
        latest, count, first, last = (
            PromptVersion.select(
                fn.MAX(PromptVersion.version), fn.COUNT(PromptVersion.id),
                fn.MIN(PromptVersion.create_time), fn.MAX(PromptVersion.create_time),
            )
            .where(PromptVersion.prompt == prompt)
            .tuples()
            .get()
        )
        return PromptView(name, prompt.active_version, latest, count, first, last)

    # -- labels, splits, resolution ------------------------------------------

    def set_label(self, caller: Caller, name: str, label: str, version: int) -> VersionView:
        check_name(name)
        releases.check_label(label)
        check_version(version)
        with self.store.transaction():
            prompt = self._prompt(caller, name, lock=True)
            row = self._version(prompt, version)
            current = PromptLabel.get_or_none((PromptLabel.prompt == prompt) & (PromptLabel.label == label))
            if current is None:
                PromptLabel.create(prompt=prompt, label=label, version=version)
            elif current.version != version:
                PromptLabel.update(version=version, update_time=utcnow()).where(
                    PromptLabel.id == current.id).execute()
            if current is None or current.version != version:
                self.store.append_event(caller.account_id, prompt.id, EventKind.LABEL_SET, caller.key_id,
                                        version=version, label=label,
                                        previous_version=current.version if current else None)
        self.on_change(caller.account_id)
        return self._labelled(row, name, prompt.active_version)

    def delete_label(self, caller: Caller, name: str, label: str) -> None:
        check_name(name)
        releases.check_label(label)
        with self.store.transaction():
            prompt = self._prompt(caller, name, lock=True)
            current = PromptLabel.get_or_none((PromptLabel.prompt == prompt) & (PromptLabel.label == label))
            if current is None:
                raise NotFound(f"prompt {name!r} has no label {label!r}", field="label",
                               reason="LABEL_NOT_FOUND")
            PromptLabel.delete().where(PromptLabel.id == current.id).execute()
            self.store.append_event(caller.account_id, prompt.id, EventKind.LABEL_DELETED, caller.key_id,
                                    label=label, previous_version=current.version)
        self.on_change(caller.account_id)

    def set_split(self, caller: Caller, name: str, arms: Sequence[tuple[int, int]]) -> Split:
        check_name(name)
        weights = releases.check_arms(arms)
        with self.store.transaction():
            prompt = self._prompt(caller, name, lock=True)
            for n, version in enumerate(weights):
                self._version(prompt, version, field=f"arms[{n}].version")
            row = TrafficSplit.get_or_none(TrafficSplit.prompt == prompt)
            old = Split.from_json(row.split_id, row.arms) if row else None
            split_id = old.split_id if old else releases.new_split_id()
            split = Split(split_id, releases.rebalance(old, weights), utcnow())
            if row is None:
                TrafficSplit.create(prompt=prompt, split_id=split.split_id, arms=split.to_json(),
                                    update_time=split.update_time)
            else:
                TrafficSplit.update(arms=split.to_json(), update_time=split.update_time).where(
                    TrafficSplit.prompt == prompt).execute()
            self.store.append_event(caller.account_id, prompt.id, EventKind.SPLIT_SET, caller.key_id,
                                    split=split.event_json())
        self.on_change(caller.account_id)
        return split

    def clear_split(self, caller: Caller, name: str) -> None:
        check_name(name)
        with self.store.transaction():
            prompt = self._prompt(caller, name, lock=True)
            if not TrafficSplit.delete().where(TrafficSplit.prompt == prompt).execute():
                raise NotFound(f"prompt {name!r} has no traffic split", field="name",
                               reason="SPLIT_NOT_FOUND")
            self.store.append_event(caller.account_id, prompt.id, EventKind.SPLIT_CLEARED, caller.key_id)
        self.on_change(caller.account_id)

    def resolve(
        self, caller: Caller, name: str, subject: str = "", label: str = "", trace_id: str = "",
        variables: dict[str, str] | None = None,
    ) -> tuple[VersionView, str]:
        """The version to use now (a label's, else the split's for the
        subject, else the active one), rendered with `variables` if any, and
        linked to `trace_id` if given."""
        check_name(name)
        releases.check_subject(subject)
        if label:
            releases.check_label(label, settable=False)
        if trace_id:
            canonical_trace_id(trace_id)
        prompt = self._prompt(caller, name)
        if label:
            number, field_name = self._by_label(prompt, label), "label"
        else:
            split = TrafficSplit.get_or_none(TrafficSplit.prompt == prompt)
            number = Split.from_json(split.split_id, split.arms).choose(subject) if split else None
            field_name = "name"
        row = self._version(prompt, number, field=field_name)
        rendered = ""
        if variables:
            rendered = self.render_row(row, variables)
        if trace_id and self.link_trace is not None:
            self.link_trace(caller, trace_id, [row.id])
        return self._labelled(row, name, prompt.active_version), rendered

    # -- history and the change feed -------------------------------------------

    def list_history(
        self, caller: Caller, name: str, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[EventView], str]:
        """A prompt's events, newest first."""
        check_name(name)
        size = check_page_size(page_size, self.max_page_size)
        prompt = self._prompt(caller, name)
        scope = {"op": "ListPromptHistory", "account": caller.account_id, "name": name}
        query = PromptEvent.select().where(PromptEvent.prompt == prompt)
        if page_token:
            (after,) = page_tokens.decode(self.page_token_key, page_token, scope)
            query = query.where(PromptEvent.id < after)
        rows = list(query.order_by(PromptEvent.id.desc()).limit(size + 1))
        views = [_event_view(r, name) for r in rows[:size]]
        more = len(rows) > size
        token = page_tokens.encode(self.page_token_key, scope, [views[-1].sequence]) if more else ""
        return views, token

    def check_watch(self, caller: Caller, names: Sequence[str]) -> None:
        """Every named prompt exists (a watch of a missing name is NOT_FOUND)."""
        for n, name in enumerate(names):
            check_name(name, f"names[{n}]")
        query = Prompt.select(Prompt.name).where(
            (Prompt.account == caller.account_id) & Prompt.name.in_(list(names)))
        found = {p for (p,) in query.tuples()} if names else set()
        for n, name in enumerate(names):
            if name not in found:
                raise NotFound(f"prompt {name!r} not found", field=f"names[{n}]", reason="PROMPT_NOT_FOUND")

    def last_sequence(self, account_id: int) -> int:
        return (PromptEvent.select(PromptEvent.id).where(PromptEvent.account == account_id)
                .order_by(PromptEvent.id.desc()).scalar()) or 0

    def states(
        self, account_id: int, names: Sequence[str] | None = None
    ) -> tuple[list[PromptStateView], int]:
        """The current state of the account's prompts (or those named), and
        the feed sequence they are current as of; read in one transaction."""
        # The sequence first: the states read after it are at least as new,
        # and an event after it is sent again with the state it made.
        sequence = self.last_sequence(account_id)
        query = Prompt.select().where(Prompt.account == account_id)
        if names:
            query = query.where(Prompt.name.in_(list(names)))
        prompts = {p.id: p for p in query}
        if not prompts:
            return [], sequence
        ids = list(prompts)
        latest = dict(PromptVersion.select(PromptVersion.prompt, fn.MAX(PromptVersion.version))
                      .where(PromptVersion.prompt.in_(ids)).group_by(PromptVersion.prompt).tuples())
        labels: dict[int, dict[str, int]] = {}
        query = PromptLabel.select(PromptLabel.prompt, PromptLabel.label, PromptLabel.version)
        for prompt_id, label, version in query.where(PromptLabel.prompt.in_(ids)).tuples():
            labels.setdefault(prompt_id, {})[label] = version
        splits = {row.prompt_id: Split.from_json(row.split_id, row.arms, row.update_time)
                  for row in TrafficSplit.select().where(TrafficSplit.prompt.in_(ids))}
        states = [
            PromptStateView(p.name, p.active_version, latest.get(pid, 0), labels.get(pid, {}),
                            splits.get(pid), sequence)
            for pid, p in sorted(prompts.items(), key=lambda item: item[1].name)
        ]
        return states, sequence

    def events_after(self, account_id: int, after: int, limit: int = 1000) -> list[EventView]:
        """The account's events after sequence `after`, oldest first, at most `limit`."""
        rows = (PromptEvent.select(PromptEvent, Prompt.name).join(Prompt)
                .where((PromptEvent.account == account_id) & (PromptEvent.id > after))
                .order_by(PromptEvent.id).limit(limit).objects())
        return [_event_view(r, r.name) for r in rows]

    def list_all(
        self, caller: Caller, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[VersionView], str]:
        """Every version of the account: name ascending, then version descending."""
        size = check_page_size(page_size, self.max_page_size)
        scope = {"op": "ListPrompts", "account": caller.account_id}
        # Names sort by code point on every backend, whatever its collation.
        name_key = self.store.by_code_point(Prompt.name)
        query = (
            PromptVersion.select(PromptVersion, Prompt.name, Prompt.active_version)
            .join(Prompt)
            .where(Prompt.account == caller.account_id)
        )
        if page_token:
            after_name, after_version = page_tokens.decode(self.page_token_key, page_token, scope)
            query = query.where(
                (name_key > after_name)
                | ((Prompt.name == after_name) & (PromptVersion.version < after_version))
            )
        rows = list(
            query.order_by(name_key, PromptVersion.version.desc()).limit(size + 1).objects()
        )
        labels = _labels_of([r.prompt_id for r in rows])
        views, more = self._page(
            [_view(r, r.name, r.active_version, labels.get((r.prompt_id, r.version), ())) for r in rows], size
        )
        last = [views[-1].name, views[-1].version] if more else None
        token = page_tokens.encode(self.page_token_key, scope, last) if more else ""
        return views, token

    def list_versions(
        self, caller: Caller, name: str, page_size: int = 0, page_token: str = ""
    ) -> tuple[list[VersionView], str]:
        """The versions of one prompt, newest first."""
        check_name(name)
        size = check_page_size(page_size, self.max_page_size)
        prompt = self._prompt(caller, name)
        scope = {"op": "ListPromptVersions", "account": caller.account_id, "name": name}
        query = PromptVersion.select().where(PromptVersion.prompt == prompt)
        if page_token:
            (after_version,) = page_tokens.decode(self.page_token_key, page_token, scope)
            query = query.where(PromptVersion.version < after_version)
        rows = list(query.order_by(PromptVersion.version.desc()).limit(size + 1))
        labels = _labels_of([prompt.id])
        views, more = self._page(
            [_view(r, name, prompt.active_version, labels.get((prompt.id, r.version), ())) for r in rows],
            size,
        )
        token = page_tokens.encode(self.page_token_key, scope, [views[-1].version]) if more else ""
        return views, token

    def _page(self, views: list[VersionView], size: int) -> tuple[list[VersionView], bool]:
        """The first `size` views, or fewer where their bytes would not fit in
        one response message (never none: a template always fits); whether
        any are left after them."""
        used = 0
        for n, view in enumerate(views[:size]):
            used += encoded_size(view)
            if n and used > self.max_page_bytes:
                return views[:n], True
        return views[:size], len(views) > size
