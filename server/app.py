"""Builds the server: the one way tests, the demo and `serve` start it.

The server is grpc.aio on an event loop of its own thread: every call is
served there, and what blocks (the database) runs on the worker threads
(workers.py), one unit of work at a time. So streams, open or idle, never
hold a thread, and health checks always answer.
"""

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from promptgauge.v1 import (
    agents_pb2,
    agents_pb2_grpc,
    analytics_pb2,
    analytics_pb2_grpc,
    prompts_pb2,
    prompts_pb2_grpc,
)

from . import storage
from .agents import AgentRegistry
from .analytics import Analytics
from .dashboard.pages import Pages
from .dashboard.web import Dashboard, tls_context
from .diagnose import explain_bind_error
from .feed import ChangeFeed
from .health import DatabaseHealth
from .interceptors import Authenticate, ConnectionScope, HealthGate, MapErrors, Observe
from .keycache import KeyCache
from .observability import serve_metrics
from .reflection import enable_reflection
from .registry import PromptRegistry
from .servicers import AgentServicer, AnalyticsServicer, PromptServicer, TraceServicer
from .settings import Settings, join_host_port, split_host_port
from .workers import Workers

log = logging.getLogger("promptgauge")

SERVICE_NAMES = (
    prompts_pb2.DESCRIPTOR.services_by_name["PromptService"].full_name,
    analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name,
    # OTLP/gRPC traces, from opentelemetry-proto's generated code (otlp.py).
    trace_service_pb2.DESCRIPTOR.services_by_name["TraceService"].full_name,
    agents_pb2.DESCRIPTOR.services_by_name["AgentService"].full_name,
)


class StartupError(Exception):
    """The server cannot start as configured; the message says what to fix."""


@dataclass
class RunningServer:
    server: grpc.aio.Server
    loop: asyncio.AbstractEventLoop
    port: int
    health: DatabaseHealth
    health_servicer: health.aio.HealthServicer
    workers: Workers
    settings: Settings
    draining: threading.Event
    feed: ChangeFeed | None = None
    metrics_server: object | None = None
    dashboard: Dashboard | None = None
    stopped: threading.Event = field(default_factory=threading.Event)

    @property
    def target(self) -> str:
        """An address a client on this machine can dial."""
        host = self.settings.listen.rsplit(":", 1)[0]
        if host in ("", "0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"{host}:{self.port}"

    @property
    def address(self) -> str:
        """The address bound: the host as asked, the port as bound."""
        return f"{self.settings.listen.rsplit(':', 1)[0]}:{self.port}"

    @property
    def metrics_port(self) -> int | None:
        return self.metrics_server.server_port if self.metrics_server else None

    @property
    def http_port(self) -> int | None:
        """The dashboard's port, when it serves one (--http-listen)."""
        return self.dashboard.port if self.dashboard else None

    @property
    def dashboard_url(self) -> str | None:
        """The dashboard's address for a browser on this machine."""
        if self.dashboard is None:
            return None
        host = split_host_port(self.settings.http_listen)[0]
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        scheme = "https" if self.dashboard.tls else "http"
        return f"{scheme}://{join_host_port(host, self.dashboard.port)}"

    def _on_loop(self, coroutine, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self, grace: float | None = None) -> None:
        """Stop taking calls and let in-flight ones finish for `grace` seconds;
        a request stream stops at its next message with UNAVAILABLE
        (interceptors.HealthGate), so nothing it was not told is stored goes unsaid."""
        if self.stopped.is_set():
            return
        self.health.stop()
        self.draining.set()
        if self.feed is not None:
            # Watch streams never end by themselves: end them, with a reason.
            self._on_loop(self.feed.close())
        if self.dashboard is not None:
            self._on_loop(self.dashboard.stop())
        self._on_loop(self.health_servicer.enter_graceful_shutdown())
        self._on_loop(self.server.stop(self.settings.grace_seconds if grace is None else grace))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.workers.shutdown()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
        storage.db.close_all()
        self.stopped.set()

    def wait(self) -> None:
        self.stopped.wait()


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise StartupError(f"cannot read {path}: {error.strerror}") from None


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from the settings' PEM files, or None for plaintext."""
    if not (settings.tls_cert_file or settings.tls_key_file):
        if settings.tls_client_ca_file:
            raise StartupError("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
        return None
    if not (settings.tls_cert_file and settings.tls_key_file):
        raise StartupError("TLS needs both --tls-cert-file and --tls-key-file")
    client_ca = _read(settings.tls_client_ca_file) if settings.tls_client_ca_file else None
    return grpc.ssl_server_credentials(
        [(_read(settings.tls_key_file), _read(settings.tls_cert_file))],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


class _HealthPublisher:
    """Hands the database's state to the aio health service on its loop; a
    status applied late is always the latest one given."""

    def __init__(self, servicer: health.aio.HealthServicer, loop: asyncio.AbstractEventLoop):
        self.servicer = servicer
        self.loop = loop
        self.latest: tuple[tuple[str, ...], int] | None = None

    def __call__(self, names: tuple[str, ...], status: int) -> None:
        self.latest = (names, status)
        asyncio.run_coroutine_threadsafe(self._apply(), self.loop)

    async def _apply(self) -> None:
        names, status = self.latest
        for name in names:
            await self.servicer.set(name, status)


def start_server(settings: Settings) -> RunningServer:
    """Open the database and start serving; the schema is created or migrated
    as soon as the database answers (at once, when it does)."""
    credentials = server_credentials(settings)
    storage.open_database(
        settings.database_url,
        # Worker threads, the health probe and a metrics scrape, with room.
        max_connections=settings.workers + 4,
        timeout=settings.database_timeout_seconds,
    )
    store = storage.store()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="promptgauge-grpc", daemon=True).start()
    workers = Workers(settings.workers)
    draining = threading.Event()
    try:
        health_servicer = asyncio.run_coroutine_threadsafe(_new_health_servicer(), loop).result()
        database_health = DatabaseHealth(
            _HealthPublisher(health_servicer, loop), SERVICE_NAMES, settings.health_check_seconds,
            settings.database_url,
        )
        analytics = Analytics(store)
        registry = PromptRegistry(
            store, settings.max_template_bytes, settings.max_page_size, settings.max_message_bytes,
            link_trace=analytics.link_trace,
        )
        agent_registry = AgentRegistry(store, registry, analytics)
        keys = KeyCache(settings.api_key_cache_size)
        feed = ChangeFeed(loop, workers, registry, settings.database_url, on_keys_changed=keys.clear)
        registry.on_change = feed.changed
        # Outermost first; each is one concern (see interceptors.py).
        interceptors = [
            Observe(),
            MapErrors(database_health, settings.max_message_bytes),
            HealthGate(database_health, draining),
            ConnectionScope(workers),
            Authenticate(store, workers, keys),
        ]
        server, port = asyncio.run_coroutine_threadsafe(_serve(
            settings, credentials, interceptors, [
                (prompts_pb2_grpc.add_PromptServiceServicer_to_server, PromptServicer(
                    registry, workers, feed, settings.watch_keepalive_seconds,
                )),
                (analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server, AnalyticsServicer(
                    analytics, workers, settings.max_records_per_message, settings.max_stream_errors,
                    settings.max_message_bytes,
                )),
                (trace_service_pb2_grpc.add_TraceServiceServicer_to_server, TraceServicer(analytics)),
                (agents_pb2_grpc.add_AgentServiceServicer_to_server, AgentServicer(agent_registry)),
                (health_pb2_grpc.add_HealthServicer_to_server, health_servicer),
            ],
        ), loop).result()
        asyncio.run_coroutine_threadsafe(feed.start(), loop).result()
        dashboard = None
        if settings.http_listen:
            pages = Pages(registry, analytics, store, agent_registry)
            dashboard = _start_dashboard(settings, pages, workers, database_health, server, loop)
    except BaseException:
        loop.call_soon_threadsafe(loop.stop)
        workers.shutdown()
        raise
    database_health.start()
    metrics_server = None
    if settings.metrics_listen:
        metrics_server = serve_metrics(settings.metrics_listen, lambda: database_health.schema_ready)
    running = RunningServer(
        server=server, loop=loop, port=port, health=database_health, health_servicer=health_servicer,
        workers=workers, settings=settings, draining=draining, feed=feed, metrics_server=metrics_server,
        dashboard=dashboard,
    )
    log.info(
        "promptgauge serving on %s (%s); database %s",
        running.address,
        "mutual TLS" if settings.tls_client_ca_file else "TLS" if credentials else "plaintext",
        "ready" if database_health.serving else f"unavailable: {database_health.last_error}",
    )
    return running


def _start_dashboard(settings: Settings, pages: Pages, workers: Workers, health: DatabaseHealth,
                     server: grpc.aio.Server, loop: asyncio.AbstractEventLoop) -> Dashboard:
    """The dashboard on the server's loop, with the gRPC port's TLS; if it
    cannot listen, the gRPC server it would have joined stops too."""
    tls = None
    if settings.tls_cert_file:
        tls = tls_context(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
    dashboard = Dashboard(pages, workers, health, tls, settings.grace_seconds)
    try:
        asyncio.run_coroutine_threadsafe(dashboard.start(settings.http_listen), loop).result()
    except OSError:
        asyncio.run_coroutine_threadsafe(server.stop(None), loop).result()
        raise StartupError(explain_bind_error(settings.http_listen, "--http-listen")) from None
    return dashboard


async def _new_health_servicer() -> health.aio.HealthServicer:
    return health.aio.HealthServicer()  # its conditions belong to the loop it is made on


async def _serve(settings: Settings, credentials, interceptors, servicers) -> tuple[grpc.aio.Server, int]:
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            # A second server on a port in use must fail, not share it.
            ("grpc.so_reuseport", 0),
        ],
    )
    for add, servicer in servicers:
        add(servicer, server)
    enable_reflection(server, (*SERVICE_NAMES, health.SERVICE_NAME))
    try:
        if credentials is None:
            port = server.add_insecure_port(settings.listen)
        else:
            port = server.add_secure_port(settings.listen, credentials)
    except RuntimeError:
        port = 0
    if port == 0:
        raise StartupError(f"cannot listen on {settings.listen}")
    await server.start()
    return server, port
