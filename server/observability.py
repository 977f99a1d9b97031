"""What an operator sees: one structured log line per RPC, and Prometheus
metrics on an HTTP port of their own.

Neither ever carries an API key or a template: a log line names the method,
the status code, the duration, the account id and the peer; metrics are
labelled by method and code only.
"""

import json
import logging
from datetime import datetime, timezone

from peewee import fn
from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from . import storage
from .models import Observation, VersionCheckpoint

log = logging.getLogger("promptgauge.observability")

RPCS = Counter(
    "promptgauge_rpcs",
    "RPCs handled, by method and status code.",
    ["service", "method", "code"],
)
RPC_SECONDS = Histogram(
    "promptgauge_rpc_duration_seconds",
    "Time from an RPC's start to its status, by method and status code.",
    ["service", "method", "code"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
RECORDS = Counter(
    "promptgauge_records",
    "Usage records and trace outcomes received, by kind and what became of them "
    "(recorded, duplicate, rejected).",
    ["kind", "result"],
)


_series: dict[tuple[str, str], tuple] = {}  # (method, code) -> its counter and histogram


def observe_rpc(method: str, code: str, seconds: float) -> None:
    """Count one finished RPC; `method` is the full /package.Service/Method path."""
    series = _series.get((method, code))
    if series is None:
        # labels() looks its child up under a lock on every call: once is enough.
        _, service, name = method.split("/", 2) if method.count("/") == 2 else ("", "", method)
        series = (RPCS.labels(service, name, code), RPC_SECONDS.labels(service, name, code))
        _series[method, code] = series
    series[0].inc()
    series[1].observe(seconds)


def count_records(kind: str, recorded: int, duplicates: int, rejected: int) -> None:
    for result, n in (("recorded", recorded), ("duplicate", duplicates), ("rejected", rejected)):
        if n:
            RECORDS.labels(kind, result).inc(n)


class CheckpointLag(Collector):
    """Observations not yet folded into their version's checkpoint, read from
    the database at each scrape: what a comparison must fold on the fly, and
    what a rebuild would have to redo. It stays small while folds keep up."""

    def __init__(self, ready):
        self.ready = ready  # callable: is the database there to be asked?

    def collect(self):
        lag = GaugeMetricFamily(
            "promptgauge_checkpoint_lag_observations",
            "Observations written but not yet folded into a version checkpoint "
            "(sum over versions, and the largest one version has).",
            labels=["aggregate"],
        )
        if self.ready():
            try:
                total, largest = self._read()
                lag.add_metric(["sum"], total)
                lag.add_metric(["max"], largest)
            except Exception as error:  # noqa: BLE001 - a scrape must not fail on a database fault
                log.warning("checkpoint lag not read: %s", error)
        yield lag

    @staticmethod
    def _read() -> tuple[int, int]:
        with storage.connection():
            counts = [
                n
                for _, n in Observation.select(Observation.version, fn.COUNT(Observation.id))
                .join(VersionCheckpoint, on=(Observation.version == VersionCheckpoint.version))
                .where(Observation.id > VersionCheckpoint.last_observation_id)
                .group_by(Observation.version)
                .tuples()
            ]
        return sum(counts), max(counts, default=0)


_lag_collector: CheckpointLag | None = None


def serve_metrics(listen: str, ready) -> object:
    """Start the /metrics HTTP endpoint on HOST:PORT; return its server (port
    in `.server_port`, stopped with `.shutdown()`)."""
    global _lag_collector
    # One collector per process: the metrics themselves are process-wide too.
    if _lag_collector is None:
        _lag_collector = CheckpointLag(ready)
        REGISTRY.register(_lag_collector)
    else:
        _lag_collector.ready = ready
    host, _, port = listen.rpartition(":")
    server, _thread = start_http_server(int(port), addr=host.strip("[]") or "0.0.0.0")
    return server


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the fields
    a caller passed in `extra={"fields": {...}}`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(level: str) -> None:
    """Structured logs on stderr for `promptgauge serve`."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())

