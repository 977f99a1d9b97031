"""The prompt registry: versions, activation, listing, rendering.

Plain values in, plain values out; errors are DomainErrors. Which version is
active lives in one column (Prompt.active_version), so activating one and
deactivating the previous is a single write, and exactly one version of a
name is active by construction.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from peewee import IntegrityError, fn

from . import page_tokens, schemas, templates
from .accounts import Caller
from .backends.base import Store
from .errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from .models import Prompt, PromptVersion, VersionCheckpoint
from .storage import setting
from .validation import INT32_MAX, MAX_PAGE_SIZE, check_name, check_page_size, check_text, check_version

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


def encoded_size(view: VersionView) -> int:
    """At least the bytes of `view` as a PromptVersion in a response message."""
    texts = (view.id, view.name, view.template_text, view.description, view.created_by, *view.variables,
             view.source)
    # The JSON texts bound what protobuf's Struct encoding takes, near enough.
    extra = sum(len(schemas.dumps(v).encode()) * 2 for v in (view.model_config, view.input_schema,
                                                          view.output_schema) if v)
    return sum(len(t.encode()) for t in texts) + extra + _FIELD_BYTES * (17 + len(view.variables))


def _view(row: PromptVersion, name: str, active_version: int | None) -> VersionView:
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
    ):
        self.store = store
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
                    return self._create_locked(
                        caller, name, build, description, version, activate, source, must_exist
                    )
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
        if activate is not False:
            prompt.active_version = version
            Prompt.update(active_version=version).where(Prompt.id == prompt.id).execute()
        return _view(row, name, prompt.active_version)

    def get_version(self, caller: Caller, name: str, version: int | None = None) -> VersionView:
        check_name(name)
        if version is not None:
            check_version(version)
        prompt = self._prompt(caller, name)
        return _view(self._version(prompt, version), name, prompt.active_version)

    def activate(self, caller: Caller, name: str, version: int) -> VersionView:
        check_name(name)
        check_version(version)
        with self.store.transaction():
            prompt = self._prompt(caller, name, lock=True)
            row = self._version(prompt, version)
            Prompt.update(active_version=version).where(Prompt.id == prompt.id).execute()
        return _view(row, name, version)

    def render(
        self, caller: Caller, name: str, variables: dict[str, str], version: int | None = None
    ) -> tuple[str, int]:
        check_name(name)
        if version is not None:
            check_version(version)
        prompt = self._prompt(caller, name)
        row = self._version(prompt, version)
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
        views, more = self._page([_view(r, r.name, r.active_version) for r in rows], size)
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
        views, more = self._page([_view(r, name, prompt.active_version) for r in rows], size)
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
