"""Checks on request values shared by every domain module."""

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
