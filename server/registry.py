"""The prompt registry: versions, activation, listing, rendering.

Plain values in, plain values out; errors are DomainErrors. Which version is
active lives in one column (Prompt.active_version), so activating one and
deactivating the previous is a single write, and exactly one version of a
name is active by construction.
"""

import uuid
from dataclasses import dataclass
from datetime import datetime

from peewee import IntegrityError

from . import page_tokens, templates
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


def encoded_size(view: VersionView) -> int:
    """At least the bytes of `view` as a PromptVersion in a response message."""
    texts = (view.id, view.name, view.template_text, view.description, view.created_by, *view.variables)
    return sum(len(t.encode()) for t in texts) + _FIELD_BYTES * (12 + len(view.variables))


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
    )


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

    def create_version(
        self,
        caller: Caller,
        name: str,
        template_text: str,
        description: str = "",
        version: int | None = None,
        parent_version: int | None = None,
        activate: bool | None = None,
    ) -> VersionView:
        check_name(name)
        if version is not None:
            check_version(version)
        if parent_version is not None:
            check_version(parent_version, "parent_version")
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
        check_text(template_text, "template_text")
        check_text(description, "description")
        variables = templates.parse(template_text).variables
        for _ in range(_CREATE_ATTEMPTS):
            try:
                with self.store.transaction():
                    return self._create_locked(
                        caller, name, template_text, description, version, parent_version,
                        activate, variables,
                    )
            except IntegrityError:
                # Lost a race that the row lock could not prevent (two first
                # versions of one name at once): the retry sees the winner.
                continue
        raise Unavailable(f"too much contention creating a version of {name!r}; try again")

    def _create_locked(
        self, caller, name, template_text, description, version, parent_version, activate, variables
    ) -> VersionView:
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
        if parent_version is not None:
            self._version(prompt, parent_version, field="parent_version")
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
            template_text=template_text,
            description=description,
            parent_version=parent_version,
            created_by=caller.key_id,
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
        text = templates.parse(row.template_text).render(variables, self.max_rendered_bytes)
        return text, row.version

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
