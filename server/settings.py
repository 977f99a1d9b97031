"""Every setting of the server in one dataclass, filled from flags and
PROMPTGAUGE_* environment variables (a flag wins over the environment)."""

import argparse
import os
from dataclasses import MISSING, dataclass, field, fields, replace
from urllib.parse import urlparse


def _setting(default, help: str, flag: str | None = None):
    return field(default=default, metadata={"help": help, "flag": flag})


@dataclass(frozen=True)
class Settings:
    listen: str = _setting("127.0.0.1:50051", "address to serve on, HOST:PORT (port 0 picks a free one)")
    database_url: str = _setting(
        "sqlite:///promptgauge.db", "sqlite:///PATH (default, WAL) or postgresql://USER@HOST:PORT/DB"
    )
    workers: int = _setting(16, "worker threads, and so RPCs handled at once")
    max_message_bytes: int = _setting(4 * 1024 * 1024, "largest request or response message, in bytes")
    max_template_bytes: int = _setting(64 * 1024, "largest template_text, in UTF-8 bytes")
    max_records_per_message: int = _setting(
        1000, "most records in one message of StreamUsage / StreamTraceOutcomes"
    )
    max_stream_errors: int = _setting(100, "most RecordErrors listed in one IngestSummary")
    max_page_size: int = _setting(200, "largest page_size of ListPrompts / ListPromptVersions")
    grace_seconds: float = _setting(10.0, "on SIGTERM/SIGINT, how long in-flight RPCs may finish")
    database_timeout_seconds: float = _setting(
        10.0, "how long a call waits for a locked SQLite file or a PostgreSQL connection"
    )
    health_check_seconds: float = _setting(
        5.0, "how often the database is probed for the health service while it answers"
    )
    tls_cert_file: str = _setting("", "PEM certificate chain of the server; with --tls-key-file, serve TLS")
    tls_key_file: str = _setting("", "PEM private key of the server certificate")
    tls_client_ca_file: str = _setting(
        "", "PEM CA bundle: require client certificates signed by it (mutual TLS)"
    )
    metrics_listen: str = _setting("", "HOST:PORT of the Prometheus /metrics endpoint; empty: none")
    log_level: str = _setting("INFO", "DEBUG, INFO, WARNING or ERROR")

    def masked(self) -> dict:
        """The settings to print at start, with the database password hidden."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        url = urlparse(self.database_url)
        if url.password:
            values["database_url"] = self.database_url.replace(f":{url.password}@", ":***@", 1)
        return values


def env_name(name: str) -> str:
    return "PROMPTGAUGE_" + name.upper()


def add_arguments(parser: argparse.ArgumentParser, only: tuple[str, ...] | None = None) -> None:
    """Add a --flag for each setting (or for those named in `only`)."""
    for f in fields(Settings):
        if only is not None and f.name not in only:
            continue
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=type(f.default) if f.default is not MISSING else str,
            default=None,
            help=f"{f.metadata['help']} (env {env_name(f.name)}; default {f.default})",
        )


def from_args(args: argparse.Namespace | None = None, **overrides) -> Settings:
    """Settings from defaults, then environment, then flags, then overrides."""
    values = {}
    for f in fields(Settings):
        raw = os.environ.get(env_name(f.name))
        if raw is not None:
            try:
                values[f.name] = type(f.default)(raw)
            except ValueError:
                kind = type(f.default).__name__
                raise SystemExit(f"{env_name(f.name)}={raw!r} is not a valid {kind}") from None
        flag = getattr(args, f.name, None) if args is not None else None
        if flag is not None:
            values[f.name] = flag
    values.update(overrides)
    return replace(Settings(), **values)
