"""Builds the server: the one way tests, the demo and `serve` start it."""

import logging
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from promptgauge.v1 import analytics_pb2, analytics_pb2_grpc, prompts_pb2, prompts_pb2_grpc

from . import storage
from .analytics import Analytics
from .interceptors import ServiceInterceptor
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
    health: health.HealthServicer
    settings: Settings

    @property
    def target(self) -> str:
        host = self.settings.listen.rsplit(":", 1)[0]
        if host in ("", "0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"{host}:{self.port}"

    def stop(self, grace: float | None = None) -> None:
        """Stop taking calls, let in-flight ones finish for `grace` seconds."""
        for name in ("", *SERVICE_NAMES):
            self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        self.server.stop(self.settings.grace_seconds if grace is None else grace).wait()
        storage.db.close_all()

    def wait(self) -> None:
        self.server.wait_for_termination()


def start_server(settings: Settings) -> RunningServer:
    """Open the database, create or migrate its schema, and start serving."""
    storage.open_database(settings.database_url, max_connections=settings.workers + 4)
    storage.init_schema()
    with storage.db.connection_context():
        token_key = bytes.fromhex(storage.setting("page_token_key"))
    registry = PromptRegistry(settings.max_template_bytes, token_key)

    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="rpc"),
        interceptors=[ServiceInterceptor()],
        options=options,
    )
    prompts_pb2_grpc.add_PromptServiceServicer_to_server(PromptServicer(registry), server)
    analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server(
        AnalyticsServicer(
            Analytics(), settings.max_records_per_message, settings.max_stream_errors
        ),
        server,
    )

    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )

    port = server.add_insecure_port(settings.listen)
    if port == 0:
        raise RuntimeError(f"could not listen on {settings.listen}")
    server.start()
    log.info("promptgauge serving on %s", settings.listen.rsplit(":", 1)[0] + f":{port}")
    return RunningServer(server=server, port=port, health=health_servicer, settings=settings)
