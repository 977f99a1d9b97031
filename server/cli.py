"""The `promptgauge` command: serve, accounts, keys, demo."""

import argparse
import logging
import os
import signal
import sys
import threading

from promptgauge.client import PromptGaugeError

from . import accounts, storage
from .errors import DomainError
from .settings import add_arguments, from_args


def _open(args) -> None:
    settings = from_args(args)
    storage.open_database(settings.database_url, max_connections=2)
    storage.init_schema()


def cmd_serve(args) -> int:
    from .app import start_server
    from .observability import configure_logging

    settings = from_args(args)
    configure_logging(settings.log_level)
    log = logging.getLogger("promptgauge")
    log.info("settings: %s", settings.masked())
    running = start_server(settings)
    stop = threading.Event()

    def on_signal(signum, frame):
        log.info(
            "%s: stopping; in-flight calls have %.0fs, streams stop at their next message",
            signal.Signals(signum).name,
            settings.grace_seconds,
        )
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    metrics = f", metrics on :{running.metrics_port}/metrics" if running.metrics_port else ""
    print(f"promptgauge listening on {running.target}{metrics}", flush=True)
    stop.wait()
    running.stop()
    log.info("stopped")
    return 0


def cmd_accounts_create(args) -> int:
    _open(args)
    with storage.db.connection_context():
        account_id, key_id, plain = accounts.create_account(args.name)
    print(f"account {args.name} created (id {account_id}); API key {key_id}, shown only now:")
    print(plain)
    return 0


def cmd_keys_create(args) -> int:
    _open(args)
    with storage.db.connection_context():
        key_id, plain = accounts.create_key(args.account)
    print(f"API key {key_id} created for {args.account}, shown only now:")
    print(plain)
    return 0


def cmd_keys_list(args) -> int:
    _open(args)
    with storage.db.connection_context():
        keys = accounts.list_keys(args.account)
    print(f"{'KEY ID':<22} {'CREATED (UTC)':<20} STATUS")
    for key in keys:
        status = f"revoked {key.revoke_time:%Y-%m-%d %H:%M:%S}" if key.revoke_time else "active"
        print(f"{key.id:<22} {key.create_time:%Y-%m-%d %H:%M:%S}  {status}")
    return 0


def cmd_keys_revoke(args) -> int:
    _open(args)
    with storage.db.connection_context():
        key = accounts.revoke_key(args.key_id)
    print(f"API key {key.id} of {key.account} revoked at {key.revoke_time:%Y-%m-%d %H:%M:%S} UTC")
    return 0


def cmd_compare(args) -> int:
    from promptgauge.client import PromptGaugeClient
    from promptgauge.client.format import comparison_table

    api_key = args.api_key or os.environ.get("PROMPTGAUGE_API_KEY")
    if not api_key:
        print("promptgauge: give --api-key or set PROMPTGAUGE_API_KEY", file=sys.stderr)
        return 2
    with PromptGaugeClient(args.target, api_key) as pg:
        try:
            print(comparison_table(pg.compare_prompt_versions(args.name)))
        except PromptGaugeError as error:
            print(f"promptgauge: {error}", file=sys.stderr)
            return 1
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    return run_demo()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="promptgauge", description="Prompt versioning and per-version outcome analytics."
    )
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

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    kc = with_db(keys.add_parser("create", help="create another key; prints it last"))
    kc.add_argument("account")
    kc.set_defaults(run=cmd_keys_create)
    kl = with_db(keys.add_parser("list", help="list an account's keys (never the keys themselves)"))
    kl.add_argument("account")
    kl.set_defaults(run=cmd_keys_list)
    kr = with_db(keys.add_parser("revoke", help="revoke a key at once"))
    kr.add_argument("key_id")
    kr.set_defaults(run=cmd_keys_revoke)

    compare = commands.add_parser("compare", help="print a prompt's per-version metrics as a table")
    compare.add_argument("name")
    compare.add_argument(
        "--target",
        default=os.environ.get("PROMPTGAUGE_TARGET", "127.0.0.1:50051"),
        help="server address HOST:PORT (env PROMPTGAUGE_TARGET; default 127.0.0.1:50051)",
    )
    compare.add_argument("--api-key", help="API key (env PROMPTGAUGE_API_KEY)")
    compare.set_defaults(run=cmd_compare)

    demo = commands.add_parser("demo", help="run a walk-through on a temporary SQLite database")
    demo.set_defaults(run=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except DomainError as error:
        print(f"promptgauge: {error.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
