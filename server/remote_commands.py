"""The commands that work through a running server, over gRPC with the
Python client: `promptgauge prompts ...` and `promptgauge agents ...`.
(accounts and keys work on the database itself: cli.py.)

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
from promptgauge.v1 import agents_pb2, analytics_pb2, prompts_pb2

from .agents import check_label
from .cli import DEFAULT_TARGET, CommandError, UsageError
from .errors import InvalidArgument
from .releases import check_label as check_prompt_label
from .settings import split_host_port
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


def name_version_or_label(raw: str) -> tuple[str, int | None, str]:
    """argparse type: NAME, NAME@VERSION or NAME:LABEL (`latest` and
    `active` included); (name, version or None, label or "")."""
    if ":" in raw:
        name, _, label = raw.partition(":")
        try:
            return prompt_name(name), None, check_prompt_label(label, settable=False)
        except InvalidArgument as error:
            raise argparse.ArgumentTypeError(error.message) from None
    return (*name_at_version(raw), "")


def split_arm(raw: str) -> tuple[int, int]:
    """argparse type: VERSION=WEIGHT, as in `2=10`."""
    version, equals, weight = raw.partition("=")
    if not equals or not weight.isascii() or not weight.isdigit() or int(weight) > 2**32 - 1:
        raise argparse.ArgumentTypeError(f"{raw!r} is not VERSION=WEIGHT (a weight from 0 to 4294967295)")
    return version_number(version), int(weight)


def agent_label(raw: str) -> str:
    """argparse type: an agent version label."""
    try:
        return check_label(raw)
    except InvalidArgument as error:
        raise argparse.ArgumentTypeError(error.message) from None


def agent_at_version(raw: str) -> tuple[str, str | None]:
    """argparse type: AGENT or AGENT@VERSION."""
    name, at, label = raw.partition("@")
    return prompt_name(name), agent_label(label) if at else None


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


def _compact(message: Message) -> str:
    """A message or Struct as one line of JSON (protobuf's JSON mapping),
    keys sorted: a Struct's map has no order of its own."""
    return json.dumps(
        json_format.MessageToDict(message), ensure_ascii=False, separators=(", ", ": "), sort_keys=True
    )


def _describe(v: prompts_pb2.PromptVersion) -> str:
    facts = [
        ("parent", _parent(v)),
        ("change", prompts_pb2.ChangeKind.Name(v.change).removeprefix("CHANGE_KIND_").lower()),
        ("created", f"{_utc(v)} UTC by {v.created_by}" + (f" ({v.source})" if v.source else "")),
        ("variables", ", ".join(v.variables) or "-"),
        ("id", v.id),
    ]
    if v.HasField("model_config"):
        facts.append(("model", _compact(v.model_config)))
    if v.HasField("input_schema"):
        facts.append(("input", _compact(v.input_schema)))
    if v.HasField("output_schema"):
        facts.append(("output", _compact(v.output_schema)))
    if v.labels:
        facts.append(("labels", ", ".join(v.labels)))
    if v.description:
        facts.append(("description", v.description))
    lines = [f"{v.name} v{v.version}" + (" (active)" if v.is_active else "")]
    lines += [f"{label + ':':<13}{value}" for label, value in facts]
    return "\n".join(lines)


def cmd_prompts_show(args) -> int:
    name, version, label = args.target_version
    with connect(args) as pg:
        found = pg.get_prompt_version(name, version, label=label)
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


def _read_json(path: str | None, flag: str) -> dict | None:
    """A JSON object from a file named by a flag; None when the flag is not given."""
    if path is None:
        return None
    try:
        value = json.loads(Path(path).read_bytes())
    except OSError as error:
        raise CommandError(f"{flag}={path}: cannot read it: {error.strerror}") from None
    except ValueError as error:
        raise UsageError(f"{flag}={path}: not JSON: {error}") from None
    if not isinstance(value, dict):
        raise UsageError(f"{flag}={path}: must hold a JSON object, not {type(value).__name__}")
    return value


def _message_from_json(path: str | None, flag: str, message: Message) -> Message | None:
    value = _read_json(path, flag)
    if value is None:
        return None
    try:
        return json_format.ParseDict(value, message)
    except json_format.ParseError as error:
        raise UsageError(f"{flag}={path}: not a {message.DESCRIPTOR.name}: {error}") from None


def cmd_prompts_create(args) -> int:
    template_text = _read_template(args.file)
    model_config = _message_from_json(args.model_config, "--model-config", prompts_pb2.ModelConfig())
    input_schema = _read_json(args.input_schema, "--input-schema")
    output_schema = _read_json(args.output_schema, "--output-schema")
    with connect(args) as pg:
        created = pg.create_prompt_version(
            args.name,
            template_text,
            version=args.version,
            description=args.description or "",
            parent_version=args.parent,
            activate=False if args.no_activate else None,
            model_config=model_config,
            input_schema=input_schema,
            output_schema=output_schema,
            source=args.source or "",
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


def cmd_prompts_edit(args) -> int:
    with connect(args) as pg:
        edited = pg.edit_prompt_version(
            args.name,
            [tuple(pair) for pair in args.replace],
            base_version=args.base,
            description=args.description or "",
            activate=False if args.no_activate else None,
            source=args.source or "",
        )
    if args.json:
        print_json(prompts_pb2.EditPromptVersionResponse(prompt_version=edited))
    else:
        state = "active" if edited.is_active else "staged (not active)"
        print(f"created {edited.name} v{edited.version} from v{edited.parent_version}, {state}")
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
    name, version, label = args.target_version
    with connect(args) as pg:
        rendered = pg.render_prompt(name, dict(args.var or ()), version, label=label)
    if args.json:
        print_json(rendered)
    else:
        print(rendered.text)
    return 0


def cmd_prompts_diff(args) -> int:
    with connect(args) as pg:
        diff = pg.diff_prompt_versions(args.name, args.from_version, args.to_version)
    if args.json:
        print_json(diff)
    else:
        sys.stdout.write(diff.unified_diff)
        if diff.changed_fields:
            print(f"other fields that differ: {', '.join(diff.changed_fields)}")
    return 0


# -- agents -------------------------------------------------------------------


def _links(version: agents_pb2.AgentVersion) -> str:
    return ", ".join(
        f"{link.prompt_name}" + (f"@{link.pinned_version}" if link.HasField("pinned_version") else "")
        + (f" ({link.role})" if link.role else "")
        for link in version.config.prompts
    )


def cmd_agents_list(args) -> int:
    agents, token = [], ""
    with connect(args) as pg:
        while True:
            page = pg.list_agents(page_token=token)
            agents.extend(page.agents)
            token = page.next_page_token
            if not token:
                break
    if args.json:
        print_json(agents_pb2.ListAgentsResponse(agents=agents))
        return 0
    rows = [(a.name, a.current_version, f"{a.version_count:,}", _utc(a, "update_time")) for a in agents]
    print(table(("AGENT", "CURRENT", "VERSIONS", "UPDATED (UTC)"), rows, numeric={2}))
    return 0


def cmd_agents_versions(args) -> int:
    versions, token = [], ""
    with connect(args) as pg:
        while True:
            page = pg.list_agent_versions(args.agent, page_token=token)
            versions.extend(page.agent_versions)
            token = page.next_page_token
            if not token:
                break
    if args.json:
        print_json(agents_pb2.ListAgentVersionsResponse(agent_versions=versions))
        return 0
    rows = [
        (v.version, "current" if v.is_current else "", agents_pb2.AgentKind.Name(v.config.kind)
         .removeprefix("AGENT_KIND_").lower(), v.config.model_config.model or "-", _links(v), _utc(v),
         _one_line(v.message, 40))
        for v in versions
    ]
    print(table(("VERSION", "STATUS", "KIND", "MODEL", "PROMPTS", "CREATED (UTC)", "MESSAGE"), rows))
    return 0


def _describe_agent(v: agents_pb2.AgentVersion) -> str:
    facts = [
        ("kind", agents_pb2.AgentKind.Name(v.config.kind).removeprefix("AGENT_KIND_").lower()),
        ("prompts", _links(v)),
        ("created", f"{_utc(v)} UTC by {v.created_by}"),
        ("id", v.id),
    ]
    if v.config.HasField("model_config"):
        facts.append(("model", _compact(v.config.model_config)))
    for label, field in (("input", "input_schema"), ("output", "output_schema")):
        if v.HasField(field):
            facts.append((label, _compact(getattr(v, field))))
    if v.message:
        facts.append(("message", v.message))
    lines = [f"{v.agent} {v.version}" + (" (current)" if v.is_current else "")]
    lines += [f"{label + ':':<10}{value}" for label, value in facts]
    return "\n".join(lines)


def cmd_agents_show(args) -> int:
    agent, version = args.agent_version
    with connect(args) as pg:
        found = pg.get_agent_version(agent, version)
    if args.json:
        print_json(agents_pb2.GetAgentVersionResponse(agent_version=found))
    else:
        print(_describe_agent(found))
    return 0


def cmd_agents_create(args) -> int:
    config = _message_from_json(args.config, "--config", agents_pb2.AgentConfig())
    input_schema = _read_json(args.input_schema, "--input-schema")
    output_schema = _read_json(args.output_schema, "--output-schema")
    with connect(args) as pg:
        created = pg.create_agent_version(
            args.agent, config, version=args.version or "", input_schema=input_schema,
            output_schema=output_schema, message=args.message or "",
            promote=False if args.no_promote else None,
        )
    if args.json:
        print_json(agents_pb2.CreateAgentVersionResponse(agent_version=created))
    elif created.is_current:
        print(f"created {created.agent} {created.version} (current)")
    else:
        print(f"created {created.agent} {created.version}, staged (not current): promote it with "
              f"`promptgauge agents promote {created.agent} {created.version}`")
    return 0


def cmd_agents_promote(args) -> int:
    with connect(args) as pg:
        promoted = pg.promote_agent_version(args.agent, args.version)
    if args.json:
        print_json(agents_pb2.PromoteAgentVersionResponse(agent_version=promoted))
    else:
        print(f"{promoted.agent} {promoted.version} is current")
    return 0


def cmd_agents_resolve(args) -> int:
    agent, version = args.agent_version
    with connect(args) as pg:
        resolved = pg.resolve_agent(agent, version=version, trace_id=args.trace_id or "",
                                    variables=dict(args.var or ()))
    if args.json:
        print_json(resolved)
        return 0
    print(f"{resolved.agent_version.agent} {resolved.agent_version.version}")
    for p in resolved.prompts:
        print(f"[{p.role or '-'}] {p.prompt_version.name} v{p.prompt_version.version}")
        if p.rendered_text:
            print(p.rendered_text)
    return 0


def cmd_prompts_label(args) -> int:
    with connect(args) as pg:
        labelled = pg.set_prompt_label(args.name, args.label, args.version)
    if args.json:
        print_json(prompts_pb2.SetPromptLabelResponse(prompt_version=labelled))
    else:
        print(f"{labelled.name} {args.label} -> v{labelled.version}")
    return 0


def cmd_prompts_unlabel(args) -> int:
    with connect(args) as pg:
        pg.delete_prompt_label(args.name, args.label)
    if args.json:
        print_json(prompts_pb2.DeletePromptLabelResponse())
    else:
        print(f"{args.name} label {args.label} deleted")
    return 0


def cmd_prompts_split(args) -> int:
    if args.clear == bool(args.arms):
        raise UsageError("give VERSION=WEIGHT arms, or --clear (not both)")
    with connect(args) as pg:
        if args.clear:
            pg.clear_traffic_split(args.name)
        else:
            split = pg.set_traffic_split(args.name, dict(args.arms))
    if args.json:
        print_json(prompts_pb2.ClearTrafficSplitResponse() if args.clear
                   else prompts_pb2.SetTrafficSplitResponse(split=split))
    elif args.clear:
        print(f"{args.name} split cleared: callers without a label get the active version")
    else:
        total = sum(a.weight for a in split.arms)
        shares = ", ".join(f"v{a.version} {a.weight / total:.0%}" for a in split.arms)
        print(f"{args.name} split: {shares}")
    return 0


_EVENT_WORDS = {
    prompts_pb2.EVENT_KIND_VERSION_CREATED: "created",
    prompts_pb2.EVENT_KIND_VERSION_ACTIVATED: "activated",
    prompts_pb2.EVENT_KIND_LABEL_SET: "label set",
    prompts_pb2.EVENT_KIND_LABEL_DELETED: "label deleted",
    prompts_pb2.EVENT_KIND_SPLIT_SET: "split set",
    prompts_pb2.EVENT_KIND_SPLIT_CLEARED: "split cleared",
}


def _change(event: prompts_pb2.PromptEvent) -> str:
    """What an event changed, as "v1 -> v2", "production: v2 -> v3", "v1 50, v2 50"."""
    was = f"v{event.previous_version}" if event.HasField("previous_version") else "-"
    if event.kind == prompts_pb2.EVENT_KIND_VERSION_CREATED:
        return f"v{event.version}"
    if event.kind == prompts_pb2.EVENT_KIND_VERSION_ACTIVATED:
        return f"{was} -> v{event.version}"
    if event.kind == prompts_pb2.EVENT_KIND_LABEL_SET:
        return f"{event.label}: {was} -> v{event.version}"
    if event.kind == prompts_pb2.EVENT_KIND_LABEL_DELETED:
        return f"{event.label}: {was} -> -"
    if event.kind == prompts_pb2.EVENT_KIND_SPLIT_SET:
        return ", ".join(f"v{a.version} {a.weight}" for a in event.split.arms)
    return "-"


def cmd_prompts_history(args) -> int:
    with connect(args) as pg:
        events = list(itertools.islice(pg.iter_prompt_history(args.name), args.limit))
    if args.json:
        print_json(prompts_pb2.ListPromptHistoryResponse(events=events))
        return 0
    rows = [(f"{e.sequence}", _utc(e), _EVENT_WORDS.get(e.kind, "?"), _change(e), e.created_by)
            for e in events]
    print(table(("SEQUENCE", "WHEN (UTC)", "CHANGE", "WHAT", "BY KEY"), rows, numeric={0}))
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
        "prompts", help="create, list, show, edit, activate, render and diff prompt versions; labels, "
        "splits and history (through a server)"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")

    def command(name: str, run, help: str) -> argparse.ArgumentParser:
        return add_command(prompts, name, run, help)

    command("list", cmd_prompts_list, "list the prompts: active and latest version, version count")

    versions = command("versions", cmd_prompts_versions, "list a prompt's versions, newest first")
    versions.add_argument("name", type=prompt_name)

    show = command("show", cmd_prompts_show, "show a version and its template (the active one by default)")
    show.add_argument("target_version", type=name_version_or_label, metavar="NAME[@VERSION|:LABEL]")

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
    render.add_argument("target_version", type=name_version_or_label, metavar="NAME[@VERSION|:LABEL]")
    render.add_argument(
        "--var",
        type=variable,
        action="append",
        metavar="KEY=VALUE",
        help="a variable's value (repeat for each)",
    )

    create.add_argument("--model-config", metavar="FILE",
                        help="the model it is written for: a JSON ModelConfig ({\"model\": ..., ...})")
    create.add_argument("--input-schema", metavar="FILE", help="JSON Schema (2020-12) of its variables")
    create.add_argument("--output-schema", metavar="FILE", help="JSON Schema (2020-12) of its output")
    create.add_argument("--source", help="who or what made it (api, ui, ci, ...)")

    edit = command("edit", cmd_prompts_edit,
                   "create a version by exact-match replacements in a version's template")
    edit.add_argument("name", type=prompt_name)
    edit.add_argument("--replace", nargs=2, action="append", required=True, metavar=("OLD", "NEW"),
                      help="replace OLD, which must occur exactly once, by NEW (repeat: applied in order)")
    edit.add_argument("--base", type=version_number, metavar="VERSION",
                      help="the version to edit (default: the active one)")
    edit.add_argument("--description", help="what changed in this version")
    edit.add_argument("--no-activate", action="store_true", help="stage it: the active version stays")
    edit.add_argument("--source", help="who or what made it (api, ui, ci, ...)")

    diff = command("diff", cmd_prompts_diff, "print the unified diff of two versions' templates")
    diff.add_argument("name", type=prompt_name)
    diff.add_argument("from_version", type=version_number, metavar="FROM")
    diff.add_argument("to_version", type=version_number, metavar="TO")

    label = command("label", cmd_prompts_label, "point a label (production, staging...) at a version")
    label.add_argument("name", type=prompt_name)
    label.add_argument("label")
    label.add_argument("version", type=version_number)

    unlabel = command("unlabel", cmd_prompts_unlabel, "delete a label of a prompt")
    unlabel.add_argument("name", type=prompt_name)
    unlabel.add_argument("label")

    split = command("split", cmd_prompts_split,
                    "split ResolvePrompt's traffic between versions by weight (or --clear it)")
    split.add_argument("name", type=prompt_name)
    split.add_argument("arms", type=split_arm, nargs="*", metavar="VERSION=WEIGHT",
                       help="a version and its relative weight, as 1=90 2=10")
    split.add_argument("--clear", action="store_true", help="remove the split")

    history = command(
        "history", cmd_prompts_history, "who changed a prompt, when, and how: newest first"
    )
    history.add_argument("name", type=prompt_name)
    history.add_argument("--limit", type=version_number, default=50, metavar="N",
                         help="the newest N events (default 50)")

    agents = commands.add_parser(
        "agents", help="create, list, show, promote and resolve agent versions (through a server)"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")

    def agent_command(name: str, run, help: str) -> argparse.ArgumentParser:
        return add_command(agents, name, run, help)

    agent_command("list", cmd_agents_list, "list the agents: current version, version count")
    agent_versions = agent_command("versions", cmd_agents_versions, "list an agent's versions, newest first")
    agent_versions.add_argument("agent", type=prompt_name)
    agent_show = agent_command("show", cmd_agents_show, "show an agent version (the current one by default)")
    agent_show.add_argument("agent_version", type=agent_at_version, metavar="AGENT[@VERSION]")
    agent_create = agent_command(
        "create", cmd_agents_create, "create an agent version from a JSON AgentConfig; current by default"
    )
    agent_create.add_argument("agent", type=prompt_name)
    agent_create.add_argument("--config", required=True, metavar="FILE",
                              help='the AgentConfig as JSON ({"kind": "AGENT_KIND_CHAIN", "prompts": [...]})')
    agent_create.add_argument(
        "--version", type=agent_label, help='its label (default: "v" and the count + 1)'
    )
    agent_create.add_argument("--input-schema", metavar="FILE", help="JSON Schema (2020-12) of its variables")
    agent_create.add_argument("--output-schema", metavar="FILE", help="JSON Schema (2020-12) of its output")
    agent_create.add_argument("--message", help="release notes")
    agent_create.add_argument("--no-promote", action="store_true", help="stage it: the current version stays")
    agent_promote = agent_command(
        "promote", cmd_agents_promote, "make a version current: promote or roll back"
    )
    agent_promote.add_argument("agent", type=prompt_name)
    agent_promote.add_argument("version", type=agent_label)
    agent_resolve = agent_command(
        "resolve", cmd_agents_resolve, "print what a run of the agent executes now, rendered with --var"
    )
    agent_resolve.add_argument("agent_version", type=agent_at_version, metavar="AGENT[@VERSION]")
    agent_resolve.add_argument("--var", type=variable, action="append", metavar="KEY=VALUE",
                               help="a variable's value (repeat for each)")
    agent_resolve.add_argument("--trace-id", help="link this run's trace to what it resolved")
