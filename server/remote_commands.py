"""The commands that work through a running server, over gRPC with the
Python client: `promptgauge prompts ...`. (accounts and keys work on the
database itself: cli.py.)

Every command takes the same connection flags (--target, --api-key, the TLS
files, --timeout; PROMPTGAUGE_* variables stand in for them), prints a human
table or text, or with --json one JSON document: the RPC's response message
in protobuf's JSON mapping (lowerCamelCase names, int64 as strings, every
field present), so scripts read stable names. Failures are one line and an
exit code (cli.py): 2 when the command line or what the server refuses as
INVALID_ARGUMENT is wrong (nothing was done), 1 for any other failure.
"""

import argparse
import datetime
import itertools
import json
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path

from google.protobuf import json_format
from google.protobuf.message import Message

from promptgauge.client import NO_RETRY, PromptGaugeClient, PromptGaugeError
from promptgauge.client.format import table
from promptgauge.v1 import analytics_pb2, prompts_pb2

from .cli import DEFAULT_TARGET, CommandError, UsageError
from .errors import InvalidArgument
from .settings import split_host_port
from .templates import unified_diff
from .validation import INT32_MAX, check_name

CONNECTION_ENV = {
    "target": "PROMPTGAUGE_TARGET",
    "api_key": "PROMPTGAUGE_API_KEY",
    "tls_ca_file": "PROMPTGAUGE_TLS_CA_FILE",
    "tls_client_cert_file": "PROMPTGAUGE_TLS_CLIENT_CERT_FILE",
    "tls_client_key_file": "PROMPTGAUGE_TLS_CLIENT_KEY_FILE",
}


# -- arguments ----------------------------------------------------------------


def version_number(raw: str) -> int:
    """argparse type: a version, 1 to 2^31-1."""
    if not raw.isascii() or not raw.isdigit() or not 0 < int(raw) <= INT32_MAX:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a version: use a whole number from 1 to {INT32_MAX}"
        )
    return int(raw)


def prompt_name(raw: str) -> str:
    """argparse type: a prompt name, checked here so that nothing is sent."""
    try:
        return check_name(raw)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(error.message) from None


def name_at_version(raw: str) -> tuple[str, int | None]:
    """argparse type: NAME or NAME@VERSION."""
    name, at, version = raw.partition("@")
    return prompt_name(name), version_number(version) if at else None


def variable(raw: str) -> tuple[str, str]:
    """argparse type: KEY=VALUE (the value may hold '=' and be empty)."""
    key, equals, value = raw.partition("=")
    if not equals or not key:
        raise argparse.ArgumentTypeError(f"{raw!r} is not KEY=VALUE")
    return key, value


def positive_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 1e6:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds above 0")
    return value


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def duration(raw: str) -> datetime.timedelta:
    """A length of time such as 90m, 24h, 7d or 2w."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", raw.strip())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a duration such as 90m, 24h, 7d or 2w")
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if seconds > 100 * 365 * 86_400:
        raise argparse.ArgumentTypeError(f"{raw!r} is longer than a century")
    return datetime.timedelta(seconds=seconds)


def confidence(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a confidence level between 0 and 1, such as 0.95")
    return value


def cmd_compare(args) -> int:
    """`promptgauge compare NAME [--since 24h] [--baseline N] [--confidence 0.95]`."""
    from promptgauge.client.format import comparison_table

    start = None
    if args.since is not None:
        start = datetime.datetime.now(datetime.timezone.utc) - args.since
    with connect(args) as pg:
        response = pg.compare_prompt_versions(
            args.name, analytics_pb2.COMPARISON_VIEW_BASIC, start_time=start,
            baseline_version=args.baseline, confidence_level=args.confidence or 0.0,
        )
    if args.json:
        print_json(response)
        return 0
    print(comparison_table(response, args.confidence or 0.95))
    return 0


def add_compare_arguments(compare: argparse.ArgumentParser) -> None:
    compare.add_argument("name", type=prompt_name)
    compare.add_argument(
        "--since", type=duration, metavar="DURATION",
        help="only runs that ended in this time before now: 90m, 24h, 7d, 2w (default: all time)",
    )
    compare.add_argument("--baseline", type=version_number, metavar="VERSION",
                         help="the version to compare the others with (default: the active one)")
    compare.add_argument("--confidence", type=confidence, metavar="LEVEL",
                         help="confidence level of the intervals and significance (default 0.95)")
    add_connection_arguments(compare)


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--target", help=f"server address HOST:PORT (env PROMPTGAUGE_TARGET; default {DEFAULT_TARGET})"
    )
    group.add_argument("--api-key", help="API key (env PROMPTGAUGE_API_KEY)")
    group.add_argument(
        "--tls", action="store_true", help="use TLS, verifying the server against the system's CAs"
    )
    group.add_argument(
        "--tls-ca-file",
        metavar="PATH",
        help="use TLS, verifying the server against this PEM CA bundle (env PROMPTGAUGE_TLS_CA_FILE)",
    )
    group.add_argument(
        "--tls-client-cert-file",
        metavar="PATH",
        help="PEM client certificate for mutual TLS (env PROMPTGAUGE_TLS_CLIENT_CERT_FILE)",
    )
    group.add_argument(
        "--tls-client-key-file",
        metavar="PATH",
        help="PEM private key of that certificate (env PROMPTGAUGE_TLS_CLIENT_KEY_FILE)",
    )
    group.add_argument(
        "--timeout",
        type=positive_seconds,
        default=10.0,
        metavar="SECONDS",
        help="deadline of each call (default 10)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON document (protobuf's JSON mapping)"
    )


def _setting(args, name: str) -> tuple[str | None, str]:
    """A connection value and where it came from (its flag, or its variable)."""
    flag = "--" + name.replace("_", "-")
    value = getattr(args, name)
    if value:
        return value, flag
    return os.environ.get(CONNECTION_ENV[name]) or None, CONNECTION_ENV[name]


def _read_pem(args, name: str) -> bytes | None:
    path, source = _setting(args, name)
    if path is None:
        return None
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise CommandError(f"{source}={path}: cannot read it: {error.strerror}") from None


@contextmanager
def connect(args):
    """A client for the command's connection flags; a call that fails in it
    becomes one line (a server that does not answer says so, naming --target)."""
    target, source = _setting(args, "target")
    target = target or DEFAULT_TARGET
    # HOST:PORT is checked here; gRPC's other target forms (dns:///..., unix:...) go as given.
    if "://" not in target and not target.startswith(("unix:", "ipv4:", "ipv6:")):
        try:
            split_host_port(target)
        except ValueError as error:
            raise UsageError(f"{source}={target}: {error}") from None
    api_key, _ = _setting(args, "api_key")
    if not api_key:
        raise UsageError("give --api-key or set PROMPTGAUGE_API_KEY")
    cert, key = _setting(args, "tls_client_cert_file")[0], _setting(args, "tls_client_key_file")[0]
    if bool(cert) != bool(key):
        raise UsageError("mutual TLS needs both --tls-client-cert-file and --tls-client-key-file")
    roots = _read_pem(args, "tls_ca_file")
    client_cert, client_key = _read_pem(args, "tls_client_cert_file"), _read_pem(args, "tls_client_key_file")
    # One try: a person at the terminal wants the reason now, not after retries.
    client = PromptGaugeClient(
        target,
        api_key,
        timeout=args.timeout,
        retry=NO_RETRY,
        tls=args.tls,
        root_certificates=roots,
        client_certificate=client_cert,
        client_key=client_key,
    )
    try:
        yield client
    except PromptGaugeError as error:
        if error.code.name in ("UNAVAILABLE", "DEADLINE_EXCEEDED") and not error.reason:
            # No reason from a promptgauge server: the call never reached one.
            raise CommandError(
                f"no promptgauge server answers at {source}={target} ({error.message}): "
                "start `promptgauge serve` there, or fix --target"
            ) from None
        if error.code.name == "INVALID_ARGUMENT":
            raise UsageError(str(error)) from None
        raise CommandError(str(error)) from None
    finally:
        client.close()


# -- output -------------------------------------------------------------------


def print_json(message: Message) -> None:
    print(json_format.MessageToJson(message, always_print_fields_with_no_presence=True, ensure_ascii=False))


def _utc(message, field: str = "create_time") -> str:
    return f"{getattr(message, field).ToDatetime():%Y-%m-%d %H:%M:%S}"


def _one_line(text: str, limit: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _status(version: prompts_pb2.PromptVersion) -> str:
    return "active" if version.is_active else ""


def _parent(version: prompts_pb2.PromptVersion) -> str:
    return f"v{version.parent_version}" if version.HasField("parent_version") else "-"


# -- prompts ------------------------------------------------------------------


def cmd_prompts_list(args) -> int:
    with connect(args) as pg:
        # The server's default page size: a larger one could pass its --max-page-size.
        versions = list(pg.iter_prompts())
    if args.json:
        print_json(prompts_pb2.ListPromptsResponse(prompt_versions=versions))
        return 0
    rows = []
    for name, group in itertools.groupby(versions, key=lambda v: v.name):
        group = list(group)
        active = next((v.version for v in group if v.is_active), None)
        newest = max(group, key=lambda v: v.create_time.ToDatetime())
        rows.append(
            (name, f"v{active}" if active else "-", f"v{group[0].version}", f"{len(group):,}", _utc(newest))
        )
    print(table(("NAME", "ACTIVE", "LATEST", "VERSIONS", "NEWEST VERSION (UTC)"), rows, numeric={1, 2, 3}))
    return 0


def cmd_prompts_versions(args) -> int:
    with connect(args) as pg:
        versions = list(pg.iter_prompt_versions(args.name))
    if args.json:
        print_json(prompts_pb2.ListPromptVersionsResponse(prompt_versions=versions))
        return 0
    rows = [
        (
            f"v{v.version}",
            _status(v),
            _parent(v),
            _utc(v),
            v.created_by,
            ", ".join(v.variables) or "-",
            _one_line(v.description),
        )
        for v in versions
    ]
    header = ("VERSION", "STATUS", "PARENT", "CREATED (UTC)", "CREATED BY", "VARIABLES", "DESCRIPTION")
    print(table(header, rows))
    return 0


def _describe(v: prompts_pb2.PromptVersion) -> str:
    facts = [
        ("parent", _parent(v)),
        ("created", f"{_utc(v)} UTC by {v.created_by}"),
        ("variables", ", ".join(v.variables) or "-"),
        ("id", v.id),
    ]
    if v.description:
        facts.append(("description", v.description))
    lines = [f"{v.name} v{v.version}" + (" (active)" if v.is_active else "")]
    lines += [f"{label + ':':<13}{value}" for label, value in facts]
    return "\n".join(lines)


def cmd_prompts_show(args) -> int:
    name, version = args.target_version
    with connect(args) as pg:
        found = pg.get_prompt_version(name, version)
    if args.json:
        print_json(prompts_pb2.GetPromptVersionResponse(prompt_version=found))
        return 0
    print(_describe(found))
    print()
    print(found.template_text)
    return 0


def _read_template(path: str) -> str:
    source = "standard input" if path == "-" else path
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise CommandError(f"--file={path}: cannot read it: {error.strerror}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CommandError(f"--file={path}: {source} is not UTF-8 text (byte {error.start})") from None


def cmd_prompts_create(args) -> int:
    template_text = _read_template(args.file)
    with connect(args) as pg:
        created = pg.create_prompt_version(
            args.name,
            template_text,
            version=args.version,
            description=args.description or "",
            parent_version=args.parent,
            activate=False if args.no_activate else None,
        )
    if args.json:
        print_json(prompts_pb2.CreatePromptVersionResponse(prompt_version=created))
    elif created.is_active:
        print(f"created {created.name} v{created.version} (active)")
    else:
        print(
            f"created {created.name} v{created.version}, staged (not active): promote it with "
            f"`promptgauge prompts activate {created.name} {created.version}`"
        )
    return 0


def cmd_prompts_activate(args) -> int:
    with connect(args) as pg:
        activated = pg.activate_prompt_version(args.name, args.version)
    if args.json:
        print_json(prompts_pb2.ActivatePromptVersionResponse(prompt_version=activated))
    else:
        print(f"{activated.name} v{activated.version} is active")
    return 0


def cmd_prompts_render(args) -> int:
    name, version = args.target_version
    with connect(args) as pg:
        rendered = pg.render_prompt(name, dict(args.var or ()), version)
    if args.json:
        print_json(rendered)
    else:
        print(rendered.text)
    return 0


def cmd_prompts_diff(args) -> int:
    with connect(args) as pg:
        before = pg.get_prompt_version(args.name, args.from_version)
        after = pg.get_prompt_version(args.name, args.to_version)
    labels = f"{args.name} v{before.version}", f"{args.name} v{after.version}"
    diff = unified_diff(before.template_text, after.template_text, *labels)
    if args.json:
        print(json.dumps({"unifiedDiff": diff}, indent=2, ensure_ascii=False))
    else:
        sys.stdout.write(diff)
    return 0


def add_command(group: argparse._SubParsersAction, name: str, run, help: str) -> argparse.ArgumentParser:
    """An ACTION of a command group that talks to a server: the connection
    flags and --json come with it; `run(args)` returns the exit code."""
    sub = group.add_parser(name, help=help, description=help[:1].upper() + help[1:] + ".")
    add_connection_arguments(sub)
    sub.set_defaults(run=run)
    return sub


def add_commands(commands: argparse._SubParsersAction) -> None:
    """`promptgauge prompts ...`, beside the other commands."""
    prompts = commands.add_parser(
        "prompts", help="create, list, show, activate, render and diff prompt versions (through a server)"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")

    def command(name: str, run, help: str) -> argparse.ArgumentParser:
        return add_command(prompts, name, run, help)

    command("list", cmd_prompts_list, "list the prompts: active and latest version, version count")

    versions = command("versions", cmd_prompts_versions, "list a prompt's versions, newest first")
    versions.add_argument("name", type=prompt_name)

    show = command("show", cmd_prompts_show, "show a version and its template (the active one by default)")
    show.add_argument("target_version", type=name_at_version, metavar="NAME[@VERSION]")

    create = command(
        "create", cmd_prompts_create, "create a version from a file; it becomes active by default"
    )
    create.add_argument("name", type=prompt_name)
    create.add_argument(
        "--file", required=True, metavar="PATH", help="the template, UTF-8 ('-': standard input)"
    )
    create.add_argument("--description", help="what changed in this version")
    create.add_argument("--no-activate", action="store_true", help="stage it: the active version stays")
    create.add_argument(
        "--version", type=version_number, help="its number (default: one more than the highest)"
    )
    create.add_argument(
        "--parent", type=version_number, metavar="VERSION", help="the version it derives from"
    )

    activate = command(
        "activate", cmd_prompts_activate, "make a version the active one: promote or roll back"
    )
    activate.add_argument("name", type=prompt_name)
    activate.add_argument("version", type=version_number)

    render = command("render", cmd_prompts_render, "print a version's template filled with variables")
    render.add_argument("target_version", type=name_at_version, metavar="NAME[@VERSION]")
    render.add_argument(
        "--var",
        type=variable,
        action="append",
        metavar="KEY=VALUE",
        help="a variable's value (repeat for each)",
    )

    diff = command("diff", cmd_prompts_diff, "print the unified diff of two versions' templates")
    diff.add_argument("name", type=prompt_name)
    diff.add_argument("from_version", type=version_number, metavar="FROM")
    diff.add_argument("to_version", type=version_number, metavar="TO")
