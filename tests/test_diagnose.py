"""explain_database_error and explain_bind_error: one line saying what to fix,
from real driver errors and real sockets where the machine allows it, from
the drivers' known messages where it does not."""

import errno
import os
import socket
from urllib.parse import urlparse

import psycopg2
import pytest
from conftest import PG_URL, skip_without_postgres
from peewee import DatabaseError, OperationalError, SqliteDatabase

from promptgauge.server import diagnose
from promptgauge.server.diagnose import (
    bind_errno_reason,
    bind_problem,
    explain_bind_error,
    explain_database_error,
)


def _sqlite_error(path) -> Exception:
    """What the driver raises opening a SQLite database at `path`."""
    database = SqliteDatabase(str(path), pragmas={"journal_mode": "wal"})
    with pytest.raises(DatabaseError) as error:
        database.connect()
    database.close()
    return error.value


# -- SQLite: real errors, read against the file system -----------------------------


def test_sqlite_in_a_missing_directory(tmp_path):
    path = tmp_path / "missing" / "deeper" / "x.db"
    line = explain_database_error(f"sqlite:///{path}", _sqlite_error(path))
    assert line == (
        f"database sqlite:///{path}: directory {path.parent} does not exist: "
        "create it or point --database-url elsewhere"
    )


def test_sqlite_path_that_is_a_directory(tmp_path):
    line = explain_database_error(f"sqlite:///{tmp_path}", _sqlite_error(tmp_path))
    assert f"{tmp_path} is a directory" in line


def test_sqlite_under_a_file(tmp_path):
    (tmp_path / "plain").write_text("x")
    path = tmp_path / "plain" / "x.db"
    line = explain_database_error(f"sqlite:///{path}", _sqlite_error(path))
    assert f"{tmp_path / 'plain'} is not a directory" in line


def test_sqlite_file_that_is_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("not a database " * 100)
    line = explain_database_error(f"sqlite:///{path}", _sqlite_error(path))
    assert f"{path} is not a SQLite database" in line


def test_sqlite_relative_path_is_read_from_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    error = OperationalError("unable to open database file")
    line = explain_database_error("sqlite:///data/x.db", error)
    assert line.endswith(
        f"directory {tmp_path / 'data'} does not exist: create it or point --database-url elsewhere"
    )


# The tests may run as root, which writes anywhere: permissions are what
# os.access says, here.


def test_sqlite_file_not_writable(tmp_path, monkeypatch):
    path = tmp_path / "x.db"
    path.write_bytes(b"")
    monkeypatch.setattr(diagnose.os, "access", lambda p, mode: str(p) != str(path))
    error = OperationalError("attempt to write a readonly database")
    line = explain_database_error(f"sqlite:///{path}", error)
    assert f"{path} is not readable and writable by this user: fix its permissions" in line


def test_sqlite_directory_not_writable(tmp_path, monkeypatch):
    monkeypatch.setattr(diagnose.os, "access", lambda p, mode: str(p) != str(tmp_path))
    path = tmp_path / "x.db"
    line = explain_database_error(f"sqlite:///{path}", OperationalError("unable to open database file"))
    assert f"directory {tmp_path} is not writable by this user" in line


def test_sqlite_locked(tmp_path):
    line = explain_database_error(f"sqlite:///{tmp_path}/x.db", OperationalError("database is locked"))
    assert "locked by another process" in line and "--database-timeout-seconds" in line


# -- PostgreSQL: libpq's messages ------------------------------------------------------

PG = "postgresql://app:s3cret@db.internal:6432/prompts"


@pytest.mark.parametrize(
    "message, expected",
    [
        (
            'connection to server at "10.0.0.5", port 6432 failed: Connection refused\n\t'
            "Is the server running on that host and accepting TCP/IP connections?\n",
            "nothing accepts connections at db.internal:6432: is PostgreSQL running there?",
        ),
        (
            'connection to server at "10.0.0.5", port 6432 failed: '
            'FATAL:  database "prompts" does not exist\n',
            "database prompts does not exist on db.internal:6432: createdb prompts, or fix --database-url",
        ),
        (
            'connection to server at "10.0.0.5", port 6432 failed: FATAL:  password authentication '
            'failed for user "app"\n',
            "db.internal:6432 refused user app's password: fix the user or password in --database-url",
        ),
        (
            'connection to server at "10.0.0.5", port 6432 failed: FATAL:  role "app" does not exist\n',
            "role app does not exist on db.internal:6432: createuser app",
        ),
        (
            'could not translate host name "db.internal" to address: Name or service not known\n',
            "host db.internal does not resolve: fix the host in --database-url",
        ),
        (
            'connection to server at "10.0.0.5", port 6432 failed: timeout expired\n',
            "no answer from db.internal:6432 within --database-timeout-seconds",
        ),
        (
            'connection to server at "10.0.0.5", port 6432 failed: FATAL:  no pg_hba.conf entry for host '
            '"10.0.0.9", user "app", database "prompts", no encryption\n',
            "allow it in pg_hba.conf",
        ),
        (
            'connection to server at "10.0.0.5", port 6432 failed: FATAL:  sorry, too many clients already',
            "PostgreSQL at db.internal:6432 has no free connection slot",
        ),
    ],
)
def test_postgresql_messages(message, expected):
    line = explain_database_error(PG, OperationalError(message))
    assert line.startswith("database postgresql://app:***@db.internal:6432/prompts: ")
    assert expected in line, line
    assert "\n" not in line and "s3cret" not in line


def test_an_unknown_error_is_told_in_its_own_words_on_one_line():
    line = explain_database_error(PG, OperationalError("SSL SYSCALL error:\n  EOF detected\n"))
    assert line == "database postgresql://app:***@db.internal:6432/prompts: SSL SYSCALL error: EOF detected"
    assert explain_database_error("sqlite:///x.db", RuntimeError("")) == (
        "database sqlite:///x.db: RuntimeError"
    )


def test_postgresql_refusing_connections_for_real():
    # Port 1: nothing listens there, and a connection is refused at once.
    url = "postgresql://postgres:s3cret@127.0.0.1:1/test"
    with pytest.raises(psycopg2.OperationalError) as error:
        psycopg2.connect(url, connect_timeout=5)
    assert explain_database_error(url, error.value) == (
        "database postgresql://postgres:***@127.0.0.1:1/test: nothing accepts connections at 127.0.0.1:1: "
        "is PostgreSQL running there? Or fix --database-url"
    )


@pytest.mark.postgres
def test_postgresql_database_that_does_not_exist_for_real():
    if not PG_URL:
        skip_without_postgres()
    url = urlparse(PG_URL)._replace(path="/no_such_db_xyz", query="")
    with pytest.raises(psycopg2.OperationalError) as error:
        psycopg2.connect(url.geturl(), connect_timeout=5)
    assert explain_database_error(url.geturl(), error.value).endswith(
        f"database no_such_db_xyz does not exist on {url.hostname}:{url.port or 5432}: "
        "createdb no_such_db_xyz, or fix --database-url"
    )


# -- binding ------------------------------------------------------------------------------


@pytest.fixture
def listening():
    """A socket listening on a port of its own, as a running server's is."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held


def test_a_port_in_use(listening):
    address = f"127.0.0.1:{listening.getsockname()[1]}"
    assert explain_bind_error(address) == (
        f"address {address} is in use (another promptgauge serve?): stop it or choose another --listen"
    )
    assert bind_problem(address, "--metrics-listen").endswith("choose another --metrics-listen")


def test_a_port_held_with_so_reuseport_is_still_in_use():
    # How gRPC listens by default: a second gRPC server could share the port,
    # a plain probe cannot, so the probe finds the first server.
    with socket.socket() as held:
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        held.bind(("127.0.0.1", 0))
        held.listen()
        address = f"127.0.0.1:{held.getsockname()[1]}"
        assert bind_problem(address) == bind_errno_reason(address, errno.EADDRINUSE)


def test_every_interface_conflicts_with_one_in_use(listening):
    address = f"0.0.0.0:{listening.getsockname()[1]}"
    assert bind_problem(address).startswith(f"address {address} is in use")


def test_a_closed_connection_of_a_stopped_server_leaves_no_conflict():
    # A connection the server closed lingers in TIME_WAIT on its port after
    # the server stopped. gRPC listens with SO_REUSEADDR, so a restarted
    # server binds over it: so must the probe.
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port)):
            accepted, _ = server.accept()
            accepted.close()
    assert bind_problem(f"127.0.0.1:{port}") is None


def test_a_free_address_has_no_problem():
    assert bind_problem("127.0.0.1:0") is None
    assert explain_bind_error("127.0.0.1:0").startswith("could not listen on 127.0.0.1:0 (--listen), though")


def test_an_address_of_another_machine():
    # 192.0.2.0/24 is reserved for documentation: never an address of this machine.
    assert explain_bind_error("192.0.2.1:0") == (
        "192.0.2.1 is not an address of this machine: in --listen use one of its addresses, "
        "or 0.0.0.0 for every interface"
    )


def test_a_host_that_does_not_resolve():
    line = explain_bind_error("no-such-host.invalid:50051")
    assert line.startswith("--listen=no-such-host.invalid:50051: host no-such-host.invalid does not resolve")


def test_a_malformed_address_says_how_to_write_it():
    assert explain_bind_error("127.0.0.1:99999") == (
        "--listen=127.0.0.1:99999: port 99999 is out of range: use 0-65535 (0 picks a free port)"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root may bind privileged ports")
def test_a_privileged_port_for_real():
    assert "is privileged (below 1024)" in explain_bind_error("127.0.0.1:1")


@pytest.mark.parametrize(
    "number, expected",
    [
        (errno.EACCES, "port 80 of --listen=0.0.0.0:80 is privileged (below 1024)"),
        (errno.EADDRNOTAVAIL, "0.0.0.0 is not an address of this machine"),
        (errno.EADDRINUSE, "address 0.0.0.0:80 is in use"),
        (errno.ENOBUFS, "cannot listen on 0.0.0.0:80 (--listen): " + os.strerror(errno.ENOBUFS)),
    ],
)
def test_bind_errno_reasons(number, expected):
    assert bind_errno_reason("0.0.0.0:80", number).startswith(expected)
