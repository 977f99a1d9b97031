"""Prompt templates: `{variable}` placeholders, `{{` and `}}` literal braces."""

import difflib
import re
from dataclasses import dataclass

from .errors import InvalidArgument, ResourceExhausted

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A status message travels in a trailer that clients cap (16 KiB in gRPC by
# default, and the message goes there three times: grpc-message and twice in
# the details), while a template may hold thousands of variables or one of
# 64 kB: name the first few missing ones, and count the rest.
_MAX_LISTED_CHARS = 400
_MAX_NAME_CHARS = 40


def _listed(names: list[str]) -> str:
    shown: list[str] = []
    used = 0
    for name in names:
        short = name if len(name) <= _MAX_NAME_CHARS else name[:_MAX_NAME_CHARS] + "..."
        if shown and used + len(short) > _MAX_LISTED_CHARS:
            break
        shown.append(short)
        used += len(short) + 2
    rest = len(names) - len(shown)
    return ", ".join(shown) + (f" and {rest} more" if rest else "")


@dataclass(frozen=True)
class Template:
    """A parsed template: literal text and variable names, alternating."""

    parts: tuple[str, ...]  # even indexes literal text, odd indexes variable names

    @property
    def variables(self) -> list[str]:
        """Variable names in order of first appearance, each once."""
        return list(dict.fromkeys(self.parts[1::2]))

    def render(self, values: dict[str, str], max_bytes: int | None = None) -> str:
        """The filled-in text; its UTF-8 size is checked against `max_bytes`
        before it is built, since one placeholder may repeat 20,000 times."""
        missing = [name for name in self.variables if name not in values]
        if missing:
            raise InvalidArgument(
                "missing template variable" + ("s " if len(missing) > 1 else " ") + _listed(missing),
                field="variables",
                reason="MISSING_VARIABLE",
            )
        if max_bytes is not None:
            sizes = {name: len(values[name].encode()) for name in self.variables}
            size = sum(
                len(part.encode()) if i % 2 == 0 else sizes[part] for i, part in enumerate(self.parts)
            )
            if size > max_bytes:
                raise ResourceExhausted(
                    f"the rendered text would be {size} bytes; the limit is {max_bytes}",
                    field="variables",
                    reason="RENDERED_TOO_LARGE",
                )
        return "".join(
            part if i % 2 == 0 else values[part] for i, part in enumerate(self.parts)
        )


def parse(text: str) -> Template:
    """Parse a template, or raise InvalidArgument naming where it is broken."""
    parts: list[str] = []
    literal: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "{":
            if text.startswith("{{", i):
                literal.append("{")
                i += 2
                continue
            end = text.find("}", i + 1)
            name = text[i + 1 : end] if end != -1 else ""
            if end == -1 or not _VARIABLE.fullmatch(name):
                raise InvalidArgument(
                    f"template_text has a '{{' at offset {i} that opens no "
                    "{variable} placeholder (write '{{' for a literal brace; "
                    "names are letters, digits and _, not starting with a digit)",
                    field="template_text",
                    reason="INVALID_TEMPLATE",
                )
            parts.append("".join(literal))
            parts.append(name)
            literal = []
            i = end + 1
        elif ch == "}":
            if not text.startswith("}}", i):
                raise InvalidArgument(
                    f"template_text has an unmatched '}}' at offset {i} "
                    "(write '}}' for a literal brace)",
                    field="template_text",
                    reason="INVALID_TEMPLATE",
                )
            literal.append("}")
            i += 2
        else:
            literal.append(ch)
            i += 1
    parts.append("".join(literal))
    return Template(tuple(parts))


def unified_diff(before: str, after: str, from_label: str, to_label: str) -> str:
    """Two templates' unified diff as `diff -u` writes it, "\\ No newline at
    end of file" included; "" when they are the same."""
    out = []
    a, b = before.splitlines(keepends=True), after.splitlines(keepends=True)
    for line in difflib.unified_diff(a, b, fromfile=from_label, tofile=to_label):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)
