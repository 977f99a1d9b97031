"""Builds the server: the one way tests, the demo and `serve` start it."""

import logging
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from promptgauge.v1 import analytics_pb2, analytics_pb2_grpc, prompts_pb2, prompts_pb2_grpc

from . import storage
from .analytics import Analytics
from .health import DatabaseHealth
from .interceptors import ServiceInterceptor
from .observability import serve_metrics
from .registry import PromptRegistry
from .servicers import AnalyticsServicer, PromptServicer
from .settings import Settings

log = logging.getLogger("promptgauge")

SERVICE_NAMES = (
    prompts_pb2.DESCRIPTOR.services_by_name["PromptService"].full_name,
    analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name,
)


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    health: DatabaseHealth
    settings: Settings
    draining: threading.Event
    metrics_server: object | None = None

    @property
    def target(self) -> str:
        host = self.settings.listen.rsplit(":", 1)[0]
        if host in ("", "0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"{host}:{self.port}"

    @property
    def metrics_port(self) -> int | None:
        return self.metrics_server.server_port if self.metrics_server else None

    def stop(self, grace: float | None = None) -> None:
        """Stop taking calls and let in-flight ones finish for `grace` seconds;
        a stream stops at its next message with UNAVAILABLE (see
        ServiceInterceptor), so nothing it was not told is stored goes unsaid."""
        self.health.stop()
        self.draining.set()
        self.server.stop(self.settings.grace_seconds if grace is None else grace).wait()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()
        storage.db.close_all()

    def wait(self) -> None:
        self.server.wait_for_termination()


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise SystemExit(f"cannot read {path}: {error.strerror}") from None


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from the settings' PEM files, or None for plaintext."""
    if not (settings.tls_cert_file or settings.tls_key_file):
        if settings.tls_client_ca_file:
            raise SystemExit("--tls-client-ca-file needs --tls-cert-file and --tls-key-file")
        return None
    if not (settings.tls_cert_file and settings.tls_key_file):
        raise SystemExit("TLS needs both --tls-cert-file and --tls-key-file")
    client_ca = _read(settings.tls_client_ca_file) if settings.tls_client_ca_file else None
    return grpc.ssl_server_credentials(
        [(_read(settings.tls_key_file), _read(settings.tls_cert_file))],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


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
    health_servicer = health.HealthServicer()
    database_health = DatabaseHealth(health_servicer, SERVICE_NAMES, settings.health_check_seconds)
    draining = threading.Event()
    registry = PromptRegistry(
        settings.max_template_bytes, settings.max_page_size, settings.max_message_bytes
    )

    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="rpc"),
        interceptors=[ServiceInterceptor(database_health, draining)],
        options=options,
    )
    prompts_pb2_grpc.add_PromptServiceServicer_to_server(PromptServicer(registry), server)
    analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server(
        AnalyticsServicer(
            Analytics(), settings.max_records_per_message, settings.max_stream_errors
        ),
        server,
    )
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )

    if credentials is None:
        port = server.add_insecure_port(settings.listen)
    else:
        port = server.add_secure_port(settings.listen, credentials)
    if port == 0:
        raise RuntimeError(f"could not listen on {settings.listen}")
    database_health.start()
    metrics_server = None
    if settings.metrics_listen:
        metrics_server = serve_metrics(settings.metrics_listen, lambda: database_health.schema_ready)
    server.start()
    log.info(
        "promptgauge serving on %s (%s); database %s",
        settings.listen.rsplit(":", 1)[0] + f":{port}",
        "mutual TLS" if settings.tls_client_ca_file else "TLS" if credentials else "plaintext",
        "ready" if database_health.serving else f"unavailable: {database_health.last_error}",
    )
    return RunningServer(
        server=server,
        port=port,
        health=database_health,
        settings=settings,
        draining=draining,
        metrics_server=metrics_server,
    )
