"""Faults around the server, made for real: a PostgreSQL cluster of the
test's own that is stopped and started again, a URL where no database is yet,
a SQLite file locked by another process or read-only. Each time: calls fail
UNAVAILABLE with a clear message, health says NOT_SERVING, and the server
recovers by itself once the database is back, with nothing half-written."""

import glob
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import uuid
from pathlib import Path

import grpc
import pytest
from conftest import create_account, otlp_export, read_sql, refused_port, serve_process
from grpc_health.v1 import health_pb2, health_pb2_grpc

from promptgauge.client import PromptGaugeClient, PromptGaugeError
from promptgauge.client.client import NO_RETRY

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
# Probe often and give up on the database quickly, so that the tests are brisk.
QUICK = ("--health-check-seconds", "0.2", "--database-timeout-seconds", "1")


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


class Cluster:
    """A PostgreSQL cluster in a temporary folder, run as the postgres user
    when the tests run as root (PostgreSQL refuses to run as root). It
    listens on a Unix socket in that folder only, so no TCP port is taken;
    the port number only names the socket file."""

    port = 5432

    def __init__(self, folder: Path, bin_dir: Path):
        self.bin, self.data = bin_dir, folder / "data"
        self.url = f"postgresql://postgres@/postgres?host={self.data}&port={self.port}"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(folder, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-N")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_user, str(self.bin / tool), *args],
            check=True, capture_output=True, timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses='' -k {self.data} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.data / "log"), "-w", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


@pytest.fixture
def cluster():
    bin_dir = _pg_bin()
    if bin_dir is None or (os.geteuid() == 0 and shutil.which("runuser") is None):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found: the fault tests that stop "
                    "a database need a cluster of their own")
    folder = Path(tempfile.mkdtemp(prefix="promptgauge-pg-"))
    os.chmod(folder, 0o755)
    made = Cluster(folder, bin_dir)
    try:
        yield made
    finally:
        subprocess.run([*made.as_user, str(bin_dir / "pg_ctl"), "-D", str(made.data), "-m", "immediate",
                        "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_health(target: str, wanted) -> None:
    """Block on the standard health Watch stream until the status is `wanted`."""
    with grpc.insecure_channel(target) as channel:
        for answer in health_pb2_grpc.HealthStub(channel).Watch(
            health_pb2.HealthCheckRequest(service=""), timeout=60
        ):
            if answer.status == wanted:
                return


def _health(target: str):
    with grpc.insecure_channel(target) as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status


def _unavailable(call) -> PromptGaugeError:
    with pytest.raises(PromptGaugeError) as error:
        call()
    assert error.value.code == grpc.StatusCode.UNAVAILABLE, error.value
    assert "database is unavailable" in error.value.message
    return error.value


def _counts(url: str) -> tuple:
    return read_sql(url, "SELECT (SELECT COUNT(*) FROM usage_link), (SELECT COUNT(*) FROM trace), "
                     "(SELECT COUNT(*) FROM observation), (SELECT COUNT(*) FROM prompt_version)")[0]


def test_postgres_stopped_mid_run_is_unavailable_then_recovers_by_itself(cluster):
    cluster.start()
    key = create_account(cluster.url)
    with serve_process(cluster.url, *QUICK) as (proc, target):
        with PromptGaugeClient(target, key, retry=NO_RETRY) as pg:
            pg.create_prompt_version("p", "Answer {q}")
            first = str(uuid.uuid4())
            pg.record_usage("p", 1, first)
            assert _health(target) == SERVING

            cluster.stop()
            late = str(uuid.uuid4())
            _unavailable(lambda: pg.record_usage("p", 1, late))
            _unavailable(lambda: pg.compare_prompt_versions("p"))
            _wait_for_health(target, NOT_SERVING)

            cluster.start()
            _wait_for_health(target, SERVING)
            # The call that failed stored nothing; sent again, it is stored once.
            before = _counts(cluster.url)
            assert before[0] == 1
            assert pg.record_usage("p", 1, late) == "recorded"
            assert pg.compare_prompt_versions("p").versions[0].total_traces == 2
            assert _counts(cluster.url)[0] == 2
        assert proc.poll() is None, "the server must survive its database"


def test_pooled_connections_the_database_ended_are_replaced_before_a_call_uses_them(cluster):
    # The pool checks a connection by polling its socket, not with a round
    # trip: an ended backend's notice and EOF must be seen there.
    cluster.start()
    key = create_account(cluster.url)
    with serve_process(cluster.url) as (_, target), PromptGaugeClient(target, key, retry=NO_RETRY) as pg:
        pg.create_prompt_version("p", "Answer {q}")
        pg.record_usage("p", 1, str(uuid.uuid4()))
        # With a timeout, pg_terminate_backend returns once each backend is gone.
        (ended,) = read_sql(cluster.url, "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) "
                            "FROM pg_stat_activity WHERE backend_type = 'client backend' "
                            "AND pid <> pg_backend_pid()")[0]
        assert ended >= 1
        for _ in range(5):
            assert pg.record_usage("p", 1, str(uuid.uuid4())) == "recorded"
        assert pg.compare_prompt_versions("p").versions[0].total_traces == 6


def test_server_started_before_its_database_serves_once_it_answers(cluster):
    with serve_process(cluster.url, *QUICK) as (_, target):
        assert _health(target) == NOT_SERVING
        with PromptGaugeClient(target, "pgk_anything", retry=NO_RETRY) as pg:
            error = _unavailable(pg.list_prompts)
            assert "try again" in error.message

        cluster.start()
        _wait_for_health(target, SERVING)  # and the server made its schema meanwhile
        key = create_account(cluster.url)
        with PromptGaugeClient(target, key) as pg:
            assert pg.create_prompt_version("p", "Answer {q}").version == 1
            assert [v.version for v in pg.iter_prompts()] == [1]


def test_a_wrong_database_url_is_unavailable_with_a_clear_message(tmp_path):
    with refused_port() as port, serve_process(f"postgresql://postgres:s3cret@127.0.0.1:{port}/postgres",
                                               *QUICK) as (proc, target):
        assert _health(target) == NOT_SERVING
        # The operator hears it at once, at ERROR, with what to do; never the password.
        (logged,) = [json.loads(line) for line in proc.output
                     if line.startswith("{") and "database unavailable" in line][:1]
        assert logged["level"] == "ERROR"
        assert f"postgresql://postgres:***@127.0.0.1:{port}/postgres" in logged["message"]
        assert "is PostgreSQL running" in logged["message"]
        assert "s3cret" not in "".join(proc.output)
        with PromptGaugeClient(target, "pgk_anything", retry=NO_RETRY) as pg:
            error = _unavailable(pg.list_prompts)
            # OTLP exporters retry UNAVAILABLE: an export waits for the database too.
            _unavailable(lambda: pg.export_traces(otlp_export()))
        assert "pgk_anything" not in error.message
        assert proc.poll() is None


def test_a_locked_sqlite_file_is_unavailable_then_recovers_when_released(tmp_path):
    url = f"sqlite:///{tmp_path / 'locked.db'}"
    key = create_account(url)
    with serve_process(url, *QUICK) as (_, target), PromptGaugeClient(target, key, retry=NO_RETRY) as pg:
        pg.create_prompt_version("p", "Answer {q}")
        before = _counts(url)
        holder = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            error = _unavailable(lambda: pg.create_prompt_version("p", "Second {q}"))
            assert "locked" in error.message
            _wait_for_health(target, NOT_SERVING)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        _wait_for_health(target, SERVING)
        assert _counts(url) == before
        assert pg.create_prompt_version("p", "Second {q}").version == 2


def _chattr(flag: str, path: Path) -> None:
    """chattr +i makes a file read-only for everyone, root included (root
    ignores file modes); -i makes it writable again."""
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make a file read-only for root here (chattr {flag}: {done.stderr.strip()})")


def test_a_read_only_sqlite_file_is_unavailable_then_recovers_when_writable(tmp_path):
    path = tmp_path / "ro.db"
    url = f"sqlite:///{path}"
    key = create_account(url)
    _chattr("+i", path)
    try:
        with serve_process(url, *QUICK) as (_, target), PromptGaugeClient(target, key, retry=NO_RETRY) as pg:
            assert _health(target) == NOT_SERVING
            _unavailable(lambda: pg.create_prompt_version("p", "Answer {q}"))

            _chattr("-i", path)
            _wait_for_health(target, SERVING)
            assert pg.create_prompt_version("p", "Answer {q}").version == 1
    finally:
        _chattr("-i", path)


def test_a_sqlite_file_in_a_missing_directory_is_logged_with_what_to_fix(tmp_path):
    url = f"sqlite:///{tmp_path / 'missing' / 'promptgauge.db'}"
    with serve_process(url, *QUICK) as (proc, target):
        assert _health(target) == NOT_SERVING
        (logged,) = [json.loads(line) for line in proc.output
                     if line.startswith("{") and "database unavailable" in line][:1]
        assert logged["level"] == "ERROR"
        assert f"{tmp_path / 'missing'}" in logged["message"] and "does not exist" in logged["message"]
        assert "try again" not in logged["message"]
