"""Every setting of the server in one dataclass, filled from flags and
PROMPTGAUGE_* environment variables (a flag wins over the environment), and
checked in one place (Settings.validate) before anything starts."""

import argparse
import ipaddress
import math
import os
import re
import shlex
from collections.abc import Callable, Iterable
from dataclasses import MISSING, dataclass, field, fields, replace
from urllib.parse import urlparse

from .validation import INT32_MAX

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# The schemes storage.open_database accepts.
SQLITE_SCHEMES = ("sqlite", "sqlite+pool")
POSTGRES_SCHEMES = ("postgres", "postgresql", "postgres+pool", "postgresql+pool")
_PASSWORD_PARAM_RE = re.compile(r"([?&]password=)[^&#]*")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?")


def split_host_port(address: str) -> tuple[str, int]:
    """(host, port) of a HOST:PORT address, IPv6 as [::1]:PORT (host returned
    without brackets); ValueError saying what is wrong and how to write it."""
    example = "HOST:PORT, such as 127.0.0.1:50051, 0.0.0.0:50051 or [::1]:50051"
    host, colon, port = address.rpartition(":")
    if not colon:
        raise ValueError(f"expected {example}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ValueError(f"{host!r} in brackets is not an IPv6 address") from None
    elif ":" in host:
        raise ValueError(f"put an IPv6 address in brackets: [{host}]:{port}")
    elif not host:
        raise ValueError(f"give a host before the port (0.0.0.0 for every interface): use {example}")
    elif not _HOSTNAME_RE.fullmatch(host):
        raise ValueError(f"{host!r} is not a host name or address: use {example}")
    if not port.isascii() or not port.isdigit():
        raise ValueError(f"port {port!r} is not a number: use {example}")
    if int(port) > 65535:
        raise ValueError(f"port {int(port)} is out of range: use 0-65535 (0 picks a free port)")
    return host, int(port)


def join_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def mask_url(url: str) -> str:
    """`url` with its password (in the user part or a password= parameter)
    replaced by ***: safe to print and log."""
    netloc = urlparse(url).netloc
    if ":" in netloc.rpartition("@")[0]:
        userinfo, _, hostinfo = netloc.rpartition("@")
        url = url.replace(netloc, f"{userinfo.partition(':')[0]}:***@{hostinfo}", 1)
    return _PASSWORD_PARAM_RE.sub(r"\1***", url)


# -- checks: each returns what is wrong with a value, or None --------------------


def _address(value: str) -> str | None:
    try:
        split_host_port(value)
    except ValueError as error:
        return str(error)
    return None


def _optional_address(value: str) -> str | None:
    return _address(value) if value else None


def _at_least(low: int) -> Callable[[int], str | None]:
    # At most a 32-bit int: gRPC's message-size options and the protos' sizes are.
    def check(value: int) -> str | None:
        if value < low:
            return f"must be at least {low}"
        if value > INT32_MAX:
            return f"must be at most {INT32_MAX}"
        return None

    return check


def _seconds(*, zero_ok: bool) -> Callable[[float], str | None]:
    def check(value: float) -> str | None:
        if not math.isfinite(value):
            return "must be a finite number of seconds"
        if value < 0 or (value == 0 and not zero_ok):
            return "must be 0 or more seconds" if zero_ok else "must be more than 0 seconds"
        return None

    return check


def _log_level(value: str) -> str | None:
    return None if value.upper() in LOG_LEVELS else f"must be one of {', '.join(LOG_LEVELS)}"


def _database_url(url: str) -> str | None:
    forms = "sqlite:///PATH or postgresql://USER[:PASSWORD]@HOST:PORT/DB"
    parsed = urlparse(url)
    if parsed.scheme in SQLITE_SCHEMES:
        if parsed.netloc or not parsed.path.removeprefix("/"):
            return (
                "a SQLite URL is sqlite:/// then the path: sqlite:///promptgauge.db (relative) "
                "or sqlite:////var/lib/promptgauge.db (absolute)"
            )
        return None
    if parsed.scheme in POSTGRES_SCHEMES:
        try:
            port = parsed.port
        except ValueError:
            return f"the port is not a number from 1 to 65535: use {forms}"
        if port == 0:
            return f"port 0 is no PostgreSQL port: use {forms}"
        if not parsed.path.removeprefix("/"):
            return f"name the database after the host: {forms}"
        return None
    if not parsed.scheme or "://" not in url:
        return f"not a database URL: use {forms}"
    return f"unsupported scheme {parsed.scheme!r}: use {forms}"


def _setting(default, help: str, check: Callable[..., str | None] | None = None):
    return field(default=default, metadata={"help": help, "check": check})


@dataclass(frozen=True)
class Settings:
    listen: str = _setting(
        "127.0.0.1:50051", "address to serve on, HOST:PORT (port 0 picks a free one)", _address
    )
    database_url: str = _setting(
        "sqlite:///promptgauge.db",
        "sqlite:///PATH (default, WAL) or postgresql://USER@HOST:PORT/DB",
        _database_url,
    )
    workers: int = _setting(16, "worker threads, and so RPCs handled at once", _at_least(1))
    max_message_bytes: int = _setting(
        4 * 1024 * 1024, "largest request or response message, in bytes", _at_least(1)
    )
    max_template_bytes: int = _setting(64 * 1024, "largest template_text, in UTF-8 bytes", _at_least(1))
    max_records_per_message: int = _setting(
        1000, "most records in one message of StreamUsage / StreamTraceOutcomes", _at_least(1)
    )
    max_stream_errors: int = _setting(
        100, "most RecordErrors listed in one IngestSummary (0: counted, none listed)", _at_least(0)
    )
    max_page_size: int = _setting(200, "largest page_size of ListPrompts / ListPromptVersions", _at_least(1))
    grace_seconds: float = _setting(
        10.0, "on SIGTERM/SIGINT, how long in-flight RPCs may finish", _seconds(zero_ok=True)
    )
    database_timeout_seconds: float = _setting(
        10.0,
        "how long a call waits for a locked SQLite file or a PostgreSQL connection",
        _seconds(zero_ok=False),
    )
    health_check_seconds: float = _setting(
        5.0,
        "how often the database is probed for the health service while it answers",
        _seconds(zero_ok=False),
    )
    watch_keepalive_seconds: float = _setting(
        20.0, "how long a WatchPrompts stream may stay quiet before an empty keepalive message",
        _seconds(zero_ok=False),
    )
    api_key_cache_size: int = _setting(
        10_000, "API keys each replica keeps in memory (a revocation clears them everywhere); 0: none",
        _at_least(0),
    )
    tls_cert_file: str = _setting("", "PEM certificate chain of the server; with --tls-key-file, serve TLS")
    tls_key_file: str = _setting("", "PEM private key of the server certificate")
    tls_client_ca_file: str = _setting(
        "", "PEM CA bundle: require client certificates signed by it (mutual TLS)"
    )
    metrics_listen: str = _setting(
        "", "HOST:PORT of the Prometheus /metrics endpoint; empty: none", _optional_address
    )
    log_level: str = _setting("INFO", "DEBUG, INFO, WARNING or ERROR", _log_level)
    http_listen: str = _setting(
        "", "HOST:PORT of the web dashboard (sign in with an API key); empty: none", _optional_address
    )

    def masked(self) -> dict:
        """The settings to print at start, with the database password hidden."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["database_url"] = mask_url(self.database_url)
        return values

    def validate(self, names: Iterable[str] | None = None) -> "Settings":
        """Raise SettingError for the first setting (of `names`, or all) whose
        value is malformed or out of range; return self."""
        wanted = None if names is None else set(names)
        for f in fields(self):
            check = f.metadata["check"]
            if check is None or (wanted is not None and f.name not in wanted):
                continue
            problem = check(getattr(self, f.name))
            if problem:
                raise SettingError(f.name, getattr(self, f.name), problem)
        if wanted is None or wanted & {"tls_cert_file", "tls_key_file", "tls_client_ca_file"}:
            self._validate_tls()
        return self

    def _validate_tls(self) -> None:
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            given = "tls_cert_file" if self.tls_cert_file else "tls_key_file"
            raise SettingError(
                given, getattr(self, given), "TLS needs both --tls-cert-file and --tls-key-file"
            )
        if self.tls_client_ca_file and not self.tls_cert_file:
            raise SettingError(
                "tls_client_ca_file",
                self.tls_client_ca_file,
                "--tls-client-ca-file needs --tls-cert-file and --tls-key-file",
            )


class SettingError(ValueError):
    """A setting's value is malformed or out of range: the person who ran the
    command must change it. str() is one line naming the flag or environment
    variable it came from, the value (a database password masked) and the fix."""

    def __init__(self, name: str, value: object, problem: str, source: str | None = None):
        super().__init__(name, value, problem)
        self.name, self.value, self.problem = name, value, problem
        self.source = source or flag_name(name)

    def __str__(self) -> str:
        shown = mask_url(self.value) if self.name == "database_url" else str(self.value)
        return f"{self.source}={shlex.quote(shown)}: {self.problem}"


def env_name(name: str) -> str:
    return "PROMPTGAUGE_" + name.upper()


def flag_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """Add a --flag for each setting (or for those named in `only`)."""
    for f in fields(Settings):
        if only is not None and f.name not in only:
            continue
        parser.add_argument(
            flag_name(f.name),
            dest=f.name,
            type=type(f.default) if f.default is not MISSING else str,
            default=None,
            help=f"{f.metadata['help']} (env {env_name(f.name)}; default {f.default})",
        )


def from_args(
    args: argparse.Namespace | None = None, only: tuple[str, ...] | None = None, **overrides
) -> Settings:
    """Settings from defaults, then environment, then flags, then overrides,
    validated; only the settings named in `only` (all by default) are read
    from the environment and checked. Raises SettingError naming where a bad
    value came from."""
    values, sources = {}, {}
    for f in fields(Settings):
        if only is not None and f.name not in only:
            continue
        raw = os.environ.get(env_name(f.name))
        if raw is not None:
            kind = type(f.default)
            try:
                values[f.name] = kind(raw)
            except ValueError:
                problem = "not a whole number" if kind is int else f"not a {kind.__name__}"
                raise SettingError(f.name, raw, problem, env_name(f.name)) from None
            sources[f.name] = env_name(f.name)
        flag = getattr(args, f.name, None) if args is not None else None
        if flag is not None:
            values[f.name] = flag
            sources[f.name] = flag_name(f.name)
    values.update(overrides)
    settings = replace(Settings(), **values)
    try:
        return settings.validate(only)
    except SettingError as error:
        error.source = sources.get(error.name, error.source)
        raise
