"""What a version carries to reproduce a run: its model configuration and its
JSON Schemas, checked and stored as plain JSON values.

Schemas are JSON Schema draft 2020-12, checked by the `jsonschema` library
(its metaschema, not a hand-written subset). A schema arrives as a
google.protobuf.Struct, where every number is a double: 5.0 passes where
the metaschema asks for an integer, as JSON Schema's own rules say.
"""

import json
import math

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, best_match

from .errors import InvalidArgument
from .validation import check_text

MAX_SCHEMA_BYTES = 64 * 1024
MAX_STOP_SEQUENCES = 16
_TEXT_LIMITS = {"provider": 64, "model": 128}


def dumps(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def loads(text: str | None):
    """A stored JSON column's value (None stays None)."""
    return None if text is None else json.loads(text)


def check_schema(schema: dict | None, field: str) -> str | None:
    """A JSON Schema as stored (JSON text), None when there is none; an
    invalid one is InvalidArgument naming the path of the problem."""
    if not schema:
        return None
    text = dumps(schema)
    if len(text.encode()) > MAX_SCHEMA_BYTES:
        raise InvalidArgument(
            f"{field} is {len(text.encode())} bytes as JSON; the limit is {MAX_SCHEMA_BYTES}",
            field=field,
            reason="SCHEMA_TOO_LARGE",
        )
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        where = error.json_path.replace("$", field, 1)
        raise InvalidArgument(
            f"{field} is not a valid JSON Schema (draft 2020-12): at {where}: {error.message}",
            field=field,
            reason="INVALID_SCHEMA",
        ) from None
    return text


def check_variables(schema_text: str | None, variables: dict[str, str], field: str = "variables") -> None:
    """Variables (an object of strings) against a stored input schema; a
    violation is InvalidArgument naming the variable and the rule."""
    if schema_text is None:
        return
    error = best_match(Draft202012Validator(json.loads(schema_text)).iter_errors(variables))
    if error is None:
        return
    path = ".".join(str(p) for p in error.absolute_path)
    where = f"{field}.{path}" if path else field
    raise InvalidArgument(
        f"{where} breaks the input schema's {error.validator!r} rule: {error.message}"[:1000],
        field=where,
        reason="SCHEMA_VIOLATION",
    )


def check_model_config(config: dict | None, field: str = "model_config") -> str | None:
    """A model configuration (ModelConfig's fields by name) as stored, None
    when empty."""
    if not config:
        return None
    for name, limit in _TEXT_LIMITS.items():
        value = config.get(name, "")
        check_text(value, f"{field}.{name}")
        if len(value) > limit:
            raise InvalidArgument(
                f"{field}.{name} is {len(value)} characters; the limit is {limit}",
                field=f"{field}.{name}",
                reason="TEXT_TOO_LONG",
            )
    for name in ("temperature", "top_p"):
        value = config.get(name)
        # Struct and JSON mappings carry NaN and infinities as strings.
        if value is not None and (not isinstance(value, int | float) or not math.isfinite(value)):
            raise InvalidArgument(
                f"{field}.{name} must be a finite number, not {value!r}",
                field=f"{field}.{name}",
                reason="NOT_FINITE",
            )
    if config.get("max_tokens", 0) < 0:
        raise InvalidArgument(
            f"{field}.max_tokens must not be negative", field=f"{field}.max_tokens", reason="NEGATIVE_NUMBER"
        )
    stops = config.get("stop_sequences", [])
    if len(stops) > MAX_STOP_SEQUENCES:
        raise InvalidArgument(
            f"{field}.stop_sequences has {len(stops)} entries; the limit is {MAX_STOP_SEQUENCES}",
            field=f"{field}.stop_sequences",
            reason="TOO_MANY_STOP_SEQUENCES",
        )
    text = dumps(config)
    if len(text.encode()) > MAX_SCHEMA_BYTES:
        raise InvalidArgument(
            f"{field} is over {MAX_SCHEMA_BYTES} bytes as JSON", field=field, reason="MODEL_CONFIG_TOO_LARGE"
        )
    return text


def changed_fields(before: dict, after: dict, prefix: str = "") -> list[str]:
    """Dotted names of the fields whose values differ between two field
    maps; a nested map (a model config) is compared field by field, a
    schema or an `extra` as a whole."""
    out = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a == b:
            continue
        if name == "model_config" and isinstance(a, dict | None) and isinstance(b, dict | None):
            out.extend(changed_fields(a or {}, b or {}, "model_config."))
        else:
            out.append(prefix + name)
    return out
