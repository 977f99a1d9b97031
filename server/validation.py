"""Checks on request values shared by every domain module."""

import datetime
import re

from .errors import InvalidArgument

NAME_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
INT32_MAX = 2**31 - 1
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


def check_name(value: str, field: str = "name") -> str:
    """A prompt or account name: 1-128 of a-z 0-9 . _ -, starting with a letter or digit."""
    if not value:
        raise InvalidArgument(f"{field} is required", field=field, reason="EMPTY_FIELD")
    if not NAME_RE.fullmatch(value):
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise InvalidArgument(
            f"{field} {shown!r} is not a valid name: use 1-128 of a-z 0-9 . _ -, "
            "starting with a letter or digit",
            field=field,
            reason="INVALID_NAME",
        )
    return value


def check_version(value: int, field: str = "version") -> int:
    if value <= 0:
        raise InvalidArgument(
            f"{field} must be a positive integer, got {value}",
            field=field,
            reason="INVALID_VERSION",
        )
    return value


def check_text(value: str, field: str) -> str:
    """Free text that every backend can store: PostgreSQL text cannot hold NUL."""
    if "\x00" in value:
        raise InvalidArgument(
            f"{field} must not contain NUL (\\x00) characters",
            field=field,
            reason="INVALID_CHARACTER",
        )
    return value


def check_page_size(value: int, maximum: int = MAX_PAGE_SIZE) -> int:
    """page_size 1 to `maximum`; 0 means the default, 50 (or `maximum` if smaller)."""
    if value == 0:
        return min(DEFAULT_PAGE_SIZE, maximum)
    if value < 0 or value > maximum:
        raise InvalidArgument(
            f"page_size must be between 1 and {maximum} (0 for {min(DEFAULT_PAGE_SIZE, maximum)}), "
            f"got {value}",
            field="page_size",
            reason="INVALID_PAGE_SIZE",
        )
    return value


_HEX32 = re.compile(r"[0-9a-f]{32}")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_PRINTABLE = re.compile(r"[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?")


def canonical_trace_id(raw: str, field: str = "trace_id") -> str:
    """A UUID or a 32-hex OpenTelemetry trace id, as 32 lower-case hex digits."""
    value = raw.strip().lower()
    if _UUID.fullmatch(value):
        # Dashes only where a UUID has them: uuid.UUID() would take 32 hex
        # digits with dashes anywhere ("----" + 32 hex, misplaced groups).
        value = value.replace("-", "")
    if not _HEX32.fullmatch(value) or value == "0" * 32:
        shown = raw if len(raw) <= 40 else raw[:40] + "..."
        raise InvalidArgument(
            f"{field} {shown!r} is neither a UUID nor a 32-hex-digit OpenTelemetry trace id "
            "(all zeros is invalid)" if raw else f"{field} is required",
            field=field,
            reason="INVALID_TRACE_ID" if raw else "EMPTY_FIELD",
        )
    return value


def check_span_id(value: str | None, field: str = "span_id") -> str:
    """A span id (1-128 printable ASCII characters, no spaces at either end),
    or "" for none."""
    if value is not None and (len(value) > 128 or not _PRINTABLE.fullmatch(value)):
        raise InvalidArgument(
            f"{field} must be 1-128 printable ASCII characters, not starting or ending with a space",
            field=field,
            reason="INVALID_SPAN_ID",
        )
    return value or ""


# Far past any real run (a trillion dollars; 31 years in ms), and low enough
# that sums over billions of traces stay finite: an average is never inf.
MAX_AMOUNT = 1e12


def check_amount(value: float | None, field: str) -> float | None:
    """A cost or a duration: finite, 0 to MAX_AMOUNT, or None."""
    if value is not None and not (0 <= value <= MAX_AMOUNT):  # NaN fails every comparison
        raise InvalidArgument(
            f"{field} must be a finite number from 0 to {MAX_AMOUNT:g}, got {value}",
            field=field,
            reason="INVALID_NUMBER",
        )
    return value


MAX_TOKENS = 10**12


def check_tokens(value: int | None, field: str) -> int | None:
    """A token count: 0 to MAX_TOKENS, or None."""
    if value is not None and not (0 <= value <= MAX_TOKENS):
        raise InvalidArgument(
            f"{field} must be from 0 to {MAX_TOKENS:g}, got {value}",
            field=field,
            reason="INVALID_TOKENS",
        )
    return value


EARLIEST_EVENT = datetime.datetime(2000, 1, 1)
FUTURE_SLACK = datetime.timedelta(days=1)


def check_event_time(value: datetime.datetime | None, field: str) -> datetime.datetime | None:
    """When a run ended (naive UTC): from 2000 to a day past the server's
    clock (clocks disagree; a run from next year is a bug), or None."""
    if value is None:
        return None
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    if not EARLIEST_EVENT <= value <= now + FUTURE_SLACK:
        raise InvalidArgument(
            f"{field} must be from {EARLIEST_EVENT:%Y-%m-%d} to one day past now (UTC), "
            f"got {value.isoformat()}Z",
            field=field,
            reason="INVALID_TIME",
        )
    return value
