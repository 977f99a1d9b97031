"""Whether the database answers, kept in the gRPC health service.

A server starts even when its database does not answer (a wrong URL, a
PostgreSQL still starting, a locked SQLite file): it reports NOT_SERVING and
every call fails UNAVAILABLE until a probe succeeds; then it creates or
migrates the schema and reports SERVING, with no restart. A call that meets a
database error marks the server NOT_SERVING at once and wakes the probe.
"""

import logging
import threading
from collections.abc import Callable

from grpc_health.v1 import health_pb2

from . import storage
from .diagnose import explain_database_error
from .models import db

log = logging.getLogger("promptgauge.health")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

def probe() -> None:
    """Raise unless the database answers and takes writes."""
    with storage.connection(), db.atomic():
        # A write that changes nothing: a locked or read-only SQLite file,
        # or a read-only PostgreSQL, answers reads but fails here, as a
        # real write would.
        db.execute_sql("UPDATE setting SET value = value WHERE 1 = 0")


class DatabaseHealth:
    """The database's state, probed by a thread of its own and published to
    the health service under the overall name and each service's name.

    `publish(names, status)` hands a status to the health service; it may
    apply it later (on the server's event loop), so it must apply the latest
    one given when it does."""

    def __init__(self, publish: Callable[[tuple[str, ...], int], None], services: tuple[str, ...],
                 interval: float, database_url: str = ""):
        self.publisher = publish
        self.database_url = database_url
        self._reported: bool | None = None  # the state last logged; None before the first
        self.names = ("", *services)
        self.interval = interval
        self.schema_ready = False
        self.serving = False
        self.last_error = "the database has not been probed yet"
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._publish(NOT_SERVING)
        self._thread = threading.Thread(target=self._run, name="promptgauge-health", daemon=True)

    def start(self) -> None:
        """Probe once now (so a healthy server starts SERVING), then keep probing."""
        self.check()
        self._thread.start()

    def stop(self, wait: float = 15.0) -> None:
        """Stop probing and report NOT_SERVING, for a server that is shutting down.

        Waits (at most `wait` seconds) for a probe under way: the server closes
        every pooled connection next, and psycopg2 can crash the process when
        a connection is closed while another thread runs a statement on it."""
        self._stopped.set()
        self._wake.set()
        self._publish(NOT_SERVING)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(wait)

    def check(self) -> bool:
        """Probe the database (and create the schema once); publish the result."""
        try:
            if not self.schema_ready:
                storage.init_schema()
                self.schema_ready = True
            probe()
        except storage.UNAVAILABLE_ERRORS as error:
            self._set(False, error)
            return False
        self._set(True, None)
        return True

    def failed(self, error: Exception) -> None:
        """A call met a database error: NOT_SERVING now, and probe soon."""
        self._set(False, error)
        self._wake.set()

    def _set(self, ok: bool, error: Exception | None) -> None:
        if self._stopped.is_set():
            return
        if error is not None:
            self.last_error = describe(error)
        if ok != self._reported:
            if ok:
                log.info("database answers: serving")
            else:
                # What the operator must fix (a missing directory, a database
                # that does not exist) or wait for (PostgreSQL restarting).
                log.error("database unavailable, not serving: %s",
                          explain_database_error(self.database_url, error))
            self._reported = ok
        self.serving = ok
        self._publish(SERVING if ok else NOT_SERVING)

    def _publish(self, status) -> None:
        self.publisher(self.names, status)

    def _run(self) -> None:
        while not self._stopped.is_set():
            # Probe often while down, so recovery is quick; at the interval while up.
            self._wake.wait(self.interval if self.serving else min(self.interval, 0.5))
            self._wake.clear()
            if self._stopped.is_set():
                return
            try:
                self.check()
            except Exception as error:  # noqa: BLE001 - keep probing whatever the database says
                log.exception("database probe failed")
                self._set(False, error)


def describe(error: Exception) -> str:
    """A database error in one line, for logs and status messages (no secrets:
    drivers do not put passwords in their messages)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:200] + "..."
