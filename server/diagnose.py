"""Why the database or the listening address cannot be used, in one line that
says what to fix: for the `promptgauge` commands and the server's log.

Drivers report these in their own words (SQLite's "unable to open database
file" covers a missing directory and a read-only one alike), so each function
looks at the place itself (the file system, a probe bind) or at libpq's
well-known messages, and falls back to the driver's message.
"""

import errno
import os
import re
import socket
from pathlib import Path
from urllib.parse import urlparse

from .settings import POSTGRES_SCHEMES, SQLITE_SCHEMES, mask_url, split_host_port

FIX_URL = "or point --database-url elsewhere"


def explain_database_error(url: str, error: BaseException) -> str:
    """One line naming the database (password masked), what is wrong and what
    to do, for an error met while opening or using the database at `url`.

    Safe to call for any exception: what it does not recognise is told in the
    error's own words. It looks at the file system for SQLite, and never
    connects to anything."""
    scheme = urlparse(url).scheme
    message = _one_line(error)
    if scheme in SQLITE_SCHEMES:
        reason = _sqlite_reason(url, message)
    elif scheme in POSTGRES_SCHEMES:
        reason = _postgres_reason(url, message)
    else:
        reason = None
    return f"database {mask_url(url)}: {reason or message}"


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def _sqlite_reason(url: str, message: str) -> str | None:
    path = Path(urlparse(url).path[1:])
    if "database is locked" in message:
        return (
            f"{path} stayed locked by another process past --database-timeout-seconds: "
            "stop what holds it, or raise the timeout"
        )
    if "file is not a database" in message:
        return f"{path} is not a SQLite database: point --database-url at a promptgauge one or a new file"
    if path.is_dir():
        return f"{path} is a directory: name a database file in it, {FIX_URL}"
    parent = path.absolute().parent
    if not parent.exists():
        return f"directory {parent} does not exist: create it {FIX_URL}"
    if not parent.is_dir():
        return f"{parent} is not a directory: {FIX_URL}"
    # WAL mode keeps two files beside the database (-wal, -shm): the
    # directory must be writable as well as the file.
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"{path} is not readable and writable by this user: fix its permissions {FIX_URL}"
    if not os.access(parent, os.W_OK | os.X_OK):
        return (
            f"directory {parent} is not writable by this user (SQLite keeps its -wal and -shm "
            f"files there): fix its permissions {FIX_URL}"
        )
    if "readonly database" in message:
        return f"{path} is read-only (a read-only file system?): {FIX_URL}"
    return None


_QUOTED = r'"([^"]*)"'


def _postgres_reason(url: str, message: str) -> str | None:
    parsed = urlparse(url)
    host = parsed.hostname or "the local socket"
    where = f"{host}:{parsed.port or 5432}" if parsed.hostname else host
    user = parsed.username or "(the login user)"
    if match := re.search(r"could not translate host name " + _QUOTED, message):
        return f"host {match[1]} does not resolve: fix the host in --database-url"
    if "Connection refused" in message:
        return f"nothing accepts connections at {where}: is PostgreSQL running there? Or fix --database-url"
    if "No such file or directory" in message and "socket" in message:
        return (
            "no PostgreSQL socket on this machine: is PostgreSQL running here? "
            "Or give a host in --database-url"
        )
    if match := re.search(r"database " + _QUOTED + " does not exist", message):
        return f"database {match[1]} does not exist on {where}: createdb {match[1]}, or fix --database-url"
    if match := re.search(r"role " + _QUOTED + " does not exist", message):
        return (
            f"role {match[1]} does not exist on {where}: createuser {match[1]}, "
            "or fix the user in --database-url"
        )
    if "password authentication failed" in message or "no password supplied" in message:
        return f"{where} refused user {user}'s password: fix the user or password in --database-url"
    if "no pg_hba.conf entry" in message or "authentication failed" in message:
        return f"{where} refused user {user} ({message}): allow it in pg_hba.conf, or fix --database-url"
    if "timeout expired" in message:
        return (
            f"no answer from {where} within --database-timeout-seconds: check the host, port and "
            "firewall, or raise the timeout"
        )
    if "No route to host" in message or "Network is unreachable" in message:
        return f"{where} cannot be reached from here: check the host in --database-url and the network"
    if "the database system is starting up" in message or "shutting down" in message:
        return f"PostgreSQL at {where} is starting or stopping: try again in a moment"
    if any(m in message for m in ("too many connections", "too many clients", "slots are reserved")):
        return (
            f"PostgreSQL at {where} has no free connection slot: raise its max_connections, "
            "or run fewer servers or --workers"
        )
    if match := re.search(r"permission denied for (schema|database) (\S+)", message):
        return (
            f"user {user} may not create tables in {match[1]} {match[2]}: "
            f"GRANT CREATE ON SCHEMA public TO {user}, or use another user"
        )
    return None


def explain_bind_error(address: str, setting: str = "--listen") -> str:
    """One line saying why `address` (HOST:PORT, the value of `setting`)
    could not be listened on, found by binding it with a plain socket."""
    return bind_problem(address, setting) or (
        f"could not listen on {address} ({setting}), though a plain socket can bind it now: "
        "if another server just stopped, try again; set GRPC_VERBOSITY=debug to see gRPC's reason"
    )


def bind_problem(address: str, setting: str = "--listen") -> str | None:
    """Why a server could not listen on `address`, or None if it can: binds
    each of its addresses with a plain socket, as gRPC would, and lets go.

    A port in use on any of them is a problem (a server on the others would
    split the calls with whatever holds it); one that is not on this machine
    (::1 where IPv6 is off) only if none can be bound, as gRPC then fails."""
    try:
        host, port = split_host_port(address)
    except ValueError as error:
        return f"{setting}={address}: {error}"
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return (
            f"{setting}={address}: host {host} does not resolve: use a name or address of this "
            "machine, such as 127.0.0.1 or 0.0.0.0 (every interface)"
        )
    failures = []
    for family, kind, proto, _, sockaddr in found:
        try:
            with socket.socket(family, kind, proto) as probe:
                # As gRPC does, so that a closed connection still in
                # TIME_WAIT is no conflict, while a listening socket is. No
                # SO_REUSEPORT: a server holding the port with it still
                # conflicts.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(sockaddr)
        except OSError as error:
            failures.append(error.errno)
    if errno.EADDRINUSE in failures:
        return bind_errno_reason(address, errno.EADDRINUSE, setting)
    if failures and len(failures) == len(found):
        return bind_errno_reason(address, failures[0], setting)
    return None


def bind_errno_reason(address: str, number: int | None, setting: str = "--listen") -> str:
    """The line for a bind of `address` that failed with errno `number`."""
    host, port = split_host_port(address)
    if number == errno.EADDRINUSE:
        return (
            f"address {address} is in use (another promptgauge serve?): "
            f"stop it or choose another {setting}"
        )
    if number == errno.EACCES and 0 < port < 1024:
        return (
            f"port {port} of {setting}={address} is privileged (below 1024) and this user may not "
            "bind it: choose a port of 1024 or more, or run with CAP_NET_BIND_SERVICE"
        )
    if number == errno.EACCES:
        return f"this user may not bind {address}: choose another {setting}"
    if number == errno.EADDRNOTAVAIL:
        return (
            f"{host} is not an address of this machine: in {setting} use one of its addresses, "
            "or 0.0.0.0 for every interface"
        )
    reason = os.strerror(number) if number else "unknown error"
    return f"cannot listen on {address} ({setting}): {reason}"
