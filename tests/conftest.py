"""One server per backend, real clients, one account per test.

Every test that takes `client` (or `server`) runs on SQLite and, when
PROMPTGAUGE_TEST_DATABASE_URL names a PostgreSQL database, on PostgreSQL too;
there each session works in a schema of its own, dropped at the end.
"""

import importlib.util
import os
import re
import secrets
import socket
import sqlite3
import subprocess
import sys
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode, urlparse

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from promptgauge.client import PromptGaugeClient
from promptgauge.server import accounts, storage
from promptgauge.server.app import start_server
from promptgauge.server.settings import Settings
from promptgauge.v1 import analytics_pb2

PG_URL = os.environ.get("PROMPTGAUGE_TEST_DATABASE_URL", "")
PG_SKIP_REASON = (
    "PostgreSQL not configured: set PROMPTGAUGE_TEST_DATABASE_URL "
    "(e.g. postgresql://postgres@127.0.0.1:5432/test) to run these tests on it"
)
# CI sets this: there PostgreSQL is part of the machine, and a test that
# would be skipped without it fails instead.
PG_REQUIRED = os.environ.get("PROMPTGAUGE_REQUIRE_POSTGRES") == "1"


def skip_without_postgres() -> None:
    if not PG_URL:
        if PG_REQUIRED:
            pytest.fail("PROMPTGAUGE_REQUIRE_POSTGRES=1 but PROMPTGAUGE_TEST_DATABASE_URL is not set")
        pytest.skip(PG_SKIP_REASON)


@contextmanager
def postgres_schema():
    """A fresh schema in the test database; yields a URL whose connections use it."""
    import psycopg2

    schema = "promptgauge_test_" + secrets.token_hex(6)
    conn = psycopg2.connect(PG_URL)
    conn.autocommit = True
    conn.cursor().execute(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if urlparse(PG_URL).query else "?"
        yield PG_URL + sep + urlencode({"options": f"-csearch_path={schema}"})
    finally:
        conn.cursor().execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


@contextmanager
def database_url(backend: str, tmp_path: Path):
    """A new, empty database of the backend."""
    if backend == "postgres":
        skip_without_postgres()
        with postgres_schema() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'promptgauge.db'}"


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def server(backend, tmp_path_factory):
    """An in-process server on a free port, with its dashboard on another, on
    a fresh database of the backend."""
    with database_url(backend, tmp_path_factory.mktemp(backend)) as url:
        running = start_server(
            Settings(listen="127.0.0.1:0", database_url=url, workers=24, http_listen="127.0.0.1:0")
        )
        yield running
        running.stop(grace=1)


def make_account(prefix: str = "acct") -> str:
    """A new account on the running server's database; returns its API key."""
    with storage.db.connection_context():
        _, _, key = accounts.create_account(f"{prefix}-{secrets.token_hex(6)}")
    return key


@pytest.fixture
def api_key(server) -> str:
    return make_account()


@pytest.fixture
def client(server, api_key):
    with PromptGaugeClient(server.target, api_key) as pg:
        yield pg


@pytest.fixture
def other_client(server):
    """A client of a second, unrelated account."""
    with PromptGaugeClient(server.target, make_account("other")) as pg:
        yield pg


def load_gen_protos():
    """scripts/gen_protos.py as a module: the one place that knows how to run protoc."""
    path = Path(__file__).resolve().parent.parent / "scripts" / "gen_protos.py"
    spec = importlib.util.spec_from_file_location("gen_protos", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def refused_port():
    """A port of this machine where connections are refused: bound by this
    socket, which never listens, for as long as the block runs."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


_LISTENING = re.compile(
    r"promptgauge listening on (\S+?:\d+)\b(?:.*metrics on \S*:(\d+)/metrics)?(?:.*dashboard on (\S+)/\))?"
)


@contextmanager
def serve_process(database_url: str, *extra: str, port: int = 0, **popen):
    """`promptgauge serve` as a real subprocess (Popen takes `popen`), on the
    port it binds (`port` 0: one the system picks); yields (process, target).
    `process.metrics_port` is the port of /metrics when it serves one,
    `process.dashboard_url` the dashboard's address when it serves one."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "promptgauge.server.cli", "serve", "--listen", f"127.0.0.1:{port}",
         "--database-url", database_url, "--grace-seconds", "5", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )
    try:
        # The server prints its address once it is serving: wait for that line.
        output: list[str] = []
        for line in proc.stdout:
            output.append(line)
            if listening := _LISTENING.match(line):
                break
        else:
            raise RuntimeError(f"server exited with {proc.wait()} before serving: {''.join(output)}")
        target = listening.group(1)
        proc.metrics_port = int(listening.group(2)) if listening.group(2) else None
        proc.dashboard_url = listening.group(3)
        # Keep draining, so the server never blocks on a full pipe.
        drain = threading.Thread(target=lambda: output.extend(proc.stdout), daemon=True)
        drain.start()
        proc.output = output
        yield proc, target
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# -- helpers shared by the test modules -----------------------------------------


def new_trace() -> str:
    return str(uuid.uuid4())


def usage_record(name: str, version: int, trace: str, span: str | None = None) -> analytics_pb2.UsageRecord:
    return analytics_pb2.UsageRecord(prompt_name=name, prompt_version=version, trace_id=trace, span_id=span)


def trace_outcome(trace: str, success=None, cost=None, duration=None) -> analytics_pb2.TraceOutcome:
    return analytics_pb2.TraceOutcome(
        trace_id=trace, success=success, total_cost_usd=cost, duration_ms=duration
    )


def in_batches(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def create_account(url: str, name: str | None = None) -> str:
    """An account made by the real command on the database at `url`; its key."""
    done = subprocess.run(
        [sys.executable, "-m", "promptgauge.server.cli", "accounts", "create",
         name or f"acct-{uuid.uuid4().hex[:12]}", "--database-url", url],
        capture_output=True, text=True, timeout=60, check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def read_sql(url: str, query: str) -> list[tuple]:
    """A read straight from the database, bypassing every server."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return conn.execute(query).fetchall()
        finally:
            conn.close()
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetchall()
    finally:
        conn.close()


def write_sql(url: str, statement: str) -> None:
    """A write straight to the database, bypassing every server; committed."""
    if url.startswith("sqlite"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            with conn:
                conn.execute(statement)
        finally:
            conn.close()
        return
    import psycopg2

    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cursor:
            cursor.execute(statement)
    finally:
        conn.close()


def checkpoint_tails(url: str) -> dict[int, tuple[int, int]]:
    """Per version id: (checkpoint's last folded id, observations after it)."""
    rows = read_sql(
        url,
        "SELECT c.version_id, c.last_observation_id, "
        "(SELECT COUNT(*) FROM observation o WHERE o.version_id = c.version_id "
        " AND o.id > c.last_observation_id) FROM version_checkpoint c",
    )
    return {vid: (last, tail) for vid, last, tail in rows}


def comparison_snapshot(client, name: str) -> list[tuple]:
    """Every field of every version, unset ones as None: for equality checks."""
    out = []
    for m in client.compare_prompt_versions(name).versions:
        out.append((
            m.version,
            m.total_traces,
            *(getattr(m, f) if m.HasField(f) else None
              for f in ("success_rate", "avg_cost_usd", "avg_latency_ms", "p95_latency_ms")),
        ))
    return out


def otlp_span(trace: bytes, *, parent: bytes = b"", span: bytes | None = None, status: int = 0,
              start_ns: int = 0, end_ns: int = 0, **attributes):
    """An OTLP span of `trace` (16 bytes); `attributes` by key with dots as
    double underscores (promptgauge__cost_usd=0.5), typed as Python's values
    are: str, bool, int, float, or an AnyValue as it is."""
    def value(v):
        if isinstance(v, common_pb2.AnyValue):
            return v
        kind = {str: "string_value", bool: "bool_value", int: "int_value", float: "double_value"}[type(v)]
        return common_pb2.AnyValue(**{kind: v})

    return trace_pb2.Span(
        trace_id=trace, span_id=span or secrets.token_bytes(8), parent_span_id=parent, name="op",
        start_time_unix_nano=start_ns, end_time_unix_nano=end_ns, status=trace_pb2.Status(code=status),
        attributes=[common_pb2.KeyValue(key=k.replace("__", "."), value=value(v))
                    for k, v in attributes.items()],
    )


def otlp_export(*spans):
    """An ExportTraceServiceRequest of these spans, in one resource and scope."""
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(scope_spans=[trace_pb2.ScopeSpans(spans=list(spans))])]
    )
