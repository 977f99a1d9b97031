"""The `promptgauge` command: serve, accounts, keys, prompts, compare, demo.

Whatever goes wrong, a person gets one line on stderr saying what is wrong and
how to fix it, never a traceback, and an exit code:

- 2, a usage error: the command line or a PROMPTGAUGE_* variable is malformed
  or out of range (a bad flag value, an unsupported database URL, an invalid
  account name), or a server refused the request as INVALID_ARGUMENT. Nothing
  was done; fix the command.
- 1, a failure: the command was well formed but could not be carried out (the
  database or the address cannot be used, no server answers, a file cannot be
  read, the account, key or prompt does not exist, or a bug, reported as an
  internal error).
"""

import argparse
import json
import logging
import signal
import socket
import ssl
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from peewee import PeeweeException

from . import accounts, storage
from .diagnose import bind_problem, explain_bind_error, explain_database_error
from .errors import DomainError, InvalidArgument
from .settings import (
    SettingError,
    Settings,
    add_arguments,
    flag_name,
    from_args,
    join_host_port,
    mask_url,
    split_host_port,
)

USAGE = 2
FAILED = 1
DEFAULT_TARGET = "127.0.0.1:50051"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class CommandError(Exception):
    """A command could not be carried out; the message is the line to print."""


class UsageError(Exception):
    """The command line is wrong; the message is the line to print."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors in one line (and exit code 2 still)."""

    def error(self, message: str):
        self.exit(USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _open(args) -> str:
    """Open the command's database and create or migrate its schema; return its URL."""
    url = from_args(args, only=("database_url",)).database_url
    try:
        storage.open_database(url, max_connections=2)
        # init_schema raises RuntimeError for a database newer than this code.
        storage.init_schema()
    except (PeeweeException, RuntimeError) as error:
        raise CommandError(explain_database_error(url, error)) from None
    return url


def _in_database(url: str, work):
    """`work()` in one connection to the open database; a database error
    becomes one line saying what to fix."""
    try:
        with storage.db.connection_context():
            return work()
    except PeeweeException as error:
        raise CommandError(explain_database_error(url, error)) from None


def _check_serve_environment(settings: Settings) -> None:
    """Refuse, before anything starts, addresses that cannot be listened on
    and files that cannot be read: afterwards the failure would come amid the
    server's logs, and gRPC would say only "Failed to bind" or, with
    SO_REUSEPORT, share a port another server holds, splitting the calls
    between two databases."""
    for address, setting in (
        (settings.listen, "--listen"),
        (settings.metrics_listen, "--metrics-listen"),
        (settings.http_listen, "--http-listen"),
    ):
        if address and (problem := bind_problem(address, setting)):
            raise CommandError(problem)
    _check_tls_files(settings)


def _check_tls_files(settings: Settings) -> None:
    """The TLS files can be read and are what gRPC needs: OpenSSL loads them
    as gRPC would, and says when a key does not match its certificate."""
    for name in ("tls_cert_file", "tls_key_file", "tls_client_ca_file"):
        if path := getattr(settings, name):
            try:
                Path(path).open("rb").close()
            except OSError as error:
                raise CommandError(f"{flag_name(name)}={path}: cannot read it: {error.strerror}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if settings.tls_cert_file:
        try:
            # An encrypted key must fail here, not prompt: gRPC cannot decrypt it.
            context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file, password=lambda: b"")
        except ssl.SSLError as error:
            problem = (
                "the key is not the certificate's"
                if error.reason == "KEY_VALUES_MISMATCH"
                else f"not a PEM certificate chain and its unencrypted private key ({error.reason or error})"
            )
            raise CommandError(
                f"--tls-cert-file={settings.tls_cert_file} and --tls-key-file={settings.tls_key_file}: "
                f"{problem}"
            ) from None
    if settings.tls_client_ca_file:
        try:
            context.load_verify_locations(cafile=settings.tls_client_ca_file)
        except ssl.SSLError as error:
            raise CommandError(
                f"--tls-client-ca-file={settings.tls_client_ca_file}: not a PEM CA bundle "
                f"({error.reason or error})"
            ) from None


@contextmanager
def _stop_signals() -> Iterator[Callable[[], signal.Signals]]:
    """Catch SIGTERM and SIGINT; yield a function that blocks until one
    comes and returns it.

    The kernel hands a signal sent to the process to any of its threads,
    often one of gRPC's. Python runs the handler in the main thread, and only
    once that thread runs Python code again, which a main thread blocked on a
    lock never does: the signal was lost. Whichever thread takes it, Python's
    C handler writes its number to the wakeup fd, so a main thread blocked
    reading that always wakes."""
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = {number: signal.signal(number, lambda *_: None) for number in STOP_SIGNALS}
    previous_fd = signal.set_wakeup_fd(writer.fileno())

    def wait() -> signal.Signals:
        while True:
            for number in reader.recv(64):
                if number in STOP_SIGNALS:
                    return signal.Signals(number)

    try:
        yield wait
    finally:
        signal.set_wakeup_fd(previous_fd)
        for number, handler in previous.items():
            signal.signal(number, handler)
        reader.close()
        writer.close()


def cmd_serve(args) -> int:
    settings = from_args(args)  # a bad setting stops here, before anything starts
    _check_serve_environment(settings)

    from .app import StartupError, start_server
    from .observability import configure_logging

    configure_logging(settings.log_level)
    log = logging.getLogger("promptgauge")
    log.info("settings: %s", settings.masked())
    try:
        running = start_server(settings)
    except StartupError as error:
        # gRPC says only that it could not bind: find out why.
        raise CommandError(bind_problem(settings.listen) or str(error)) from None
    except OSError:
        if not settings.metrics_listen:
            raise
        raise CommandError(explain_bind_error(settings.metrics_listen, "--metrics-listen")) from None
    # The host as asked (0.0.0.0 means every interface), the port as bound;
    # the address stands alone after "listening on", for scripts to read.
    host = split_host_port(settings.listen)[0]
    line = (
        f"promptgauge listening on {join_host_port(host, running.port)}"
        f" (database {mask_url(settings.database_url)}"
    )
    if running.metrics_port:
        metrics_host = split_host_port(settings.metrics_listen)[0]
        line += f", metrics on {join_host_port(metrics_host, running.metrics_port)}/metrics"
    if running.dashboard is not None:
        scheme = "https" if running.dashboard.tls else "http"
        http_host = split_host_port(settings.http_listen)[0]
        line += f", dashboard on {scheme}://{join_host_port(http_host, running.http_port)}/"
    line += ")"
    with _stop_signals() as wait_for_signal:
        print(line, flush=True)
        received = wait_for_signal()
        log.info(
            "%s: stopping; in-flight calls have %.0fs, streams stop at their next message",
            received.name,
            settings.grace_seconds,
        )
        running.stop()
    log.info("stopped")
    return 0


def cmd_accounts_create(args) -> int:
    url = _open(args)
    account_id, key_id, plain = _in_database(url, lambda: accounts.create_account(args.name))
    print(
        f"account {args.name} created (id {account_id}) in {mask_url(url)};"
        f" API key {key_id}, shown only now:"
    )
    print(plain)
    return 0


def _utc_json(value) -> str | None:
    """A naive UTC datetime as protobuf's JSON mapping writes a Timestamp."""
    return None if value is None else value.isoformat(timespec="microseconds").removesuffix(".000000") + "Z"


def cmd_accounts_list(args) -> int:
    found = _in_database(_open(args), accounts.list_accounts)
    if args.json:
        print(json.dumps({"accounts": [
            {"name": a.name, "createTime": _utc_json(a.create_time), "activeKeys": a.active_keys,
             "revokedKeys": a.revoked_keys}
            for a in found
        ]}, indent=2))
        return 0
    width = max([len("NAME"), *(len(a.name) for a in found)])
    print(f"{'NAME':<{width}}  {'CREATED (UTC)':<19}  {'ACTIVE KEYS':>11}  {'REVOKED KEYS':>12}")
    for a in found:
        created = f"{a.create_time:%Y-%m-%d %H:%M:%S}"
        print(f"{a.name:<{width}}  {created:<19}  {a.active_keys:>11}  {a.revoked_keys:>12}")
    return 0


def cmd_keys_create(args) -> int:
    url = _open(args)
    key_id, plain = _in_database(url, lambda: accounts.create_key(args.account))
    print(f"API key {key_id} created for {args.account} in {mask_url(url)}, shown only now:")
    print(plain)
    return 0


def cmd_keys_list(args) -> int:
    keys = _in_database(_open(args), lambda: accounts.list_keys(args.account))
    if args.json:
        print(json.dumps({"keys": [
            {"id": k.id, "account": k.account, "createTime": _utc_json(k.create_time),
             "revokeTime": _utc_json(k.revoke_time)}
            for k in keys
        ]}, indent=2))
        return 0
    print(f"{'KEY ID':<22} {'CREATED (UTC)':<20} STATUS")
    for key in keys:
        status = f"revoked {key.revoke_time:%Y-%m-%d %H:%M:%S}" if key.revoke_time else "active"
        print(f"{key.id:<22} {key.create_time:%Y-%m-%d %H:%M:%S}  {status}")
    return 0


def cmd_keys_revoke(args) -> int:
    key = _in_database(_open(args), lambda: accounts.revoke_key(args.key_id))
    print(f"API key {key.id} of {key.account} revoked at {key.revoke_time:%Y-%m-%d %H:%M:%S} UTC")
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo()


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="promptgauge", description="Prompt versioning and per-version outcome analytics.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gRPC server")
    add_arguments(serve)
    serve.set_defaults(run=cmd_serve)

    def with_db(p):
        add_arguments(p, only=("database_url",))
        return p

    acc = commands.add_parser("accounts", help="manage accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = with_db(acc.add_parser("create", help="create an account; prints its API key last"))
    create.add_argument("name")
    create.set_defaults(run=cmd_accounts_create)
    al = with_db(acc.add_parser("list", help="list the accounts: names, creation dates, key counts"))
    al.add_argument("--json", action="store_true", help="print one JSON document")
    al.set_defaults(run=cmd_accounts_list)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    kc = with_db(keys.add_parser("create", help="create another key; prints it last"))
    kc.add_argument("account")
    kc.set_defaults(run=cmd_keys_create)
    kl = with_db(keys.add_parser("list", help="list an account's keys (never the keys themselves)"))
    kl.add_argument("account")
    kl.add_argument("--json", action="store_true", help="print one JSON document")
    kl.set_defaults(run=cmd_keys_list)
    kr = with_db(keys.add_parser("revoke", help="revoke a key at once"))
    kr.add_argument("key_id")
    kr.set_defaults(run=cmd_keys_revoke)

    # Imported here: that module takes CommandError and UsageError from this one.
    from .remote_commands import add_commands, add_compare_arguments, cmd_compare

    compare = commands.add_parser(
        "compare",
        help="print a prompt's per-version metrics, intervals and significance against a baseline",
    )
    add_compare_arguments(compare)
    compare.set_defaults(run=cmd_compare)

    add_commands(commands)

    demo = commands.add_parser("demo", help="run a walk-through on a temporary SQLite database")
    demo.set_defaults(run=cmd_demo)
    return parser


def _fail(line: str, code: int) -> int:
    print("promptgauge: " + " ".join(line.split()), file=sys.stderr)
    return code


def _internal_error(error: Exception) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1]
    where = f"{Path(frame.filename).name}:{frame.lineno}"
    return f"internal error: {type(error).__name__}: {error} (at {where}); please report it"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (SettingError, UsageError) as error:
        return _fail(str(error), USAGE)
    except InvalidArgument as error:
        return _fail(error.message, USAGE)
    except DomainError as error:
        return _fail(error.message, FAILED)
    except CommandError as error:
        return _fail(str(error), FAILED)
    except SystemExit as error:
        # What start-up code refuses with a message (an unreadable TLS file).
        if isinstance(error.code, str):
            return _fail(error.code, FAILED)
        raise
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # noqa: BLE001 - one line, never a traceback, for a person
        return _fail(_internal_error(error), FAILED)


if __name__ == "__main__":
    # `python -m` runs this file as __main__; the commands it imports (remote_commands)
    # import it as promptgauge.server.cli. Run that one, so there is one of each exception.
    from promptgauge.server.cli import main as _main

    sys.exit(_main())
