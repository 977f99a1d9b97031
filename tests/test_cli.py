"""The `promptgauge` command as real subprocesses: accounts and keys on a
database given by flag or environment, and `serve`'s lifecycle."""

import ctypes
import dataclasses
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import grpc
import pytest
from conftest import BACKENDS, PG_URL, database_url, serve_process, skip_without_postgres

from promptgauge.client import PromptGaugeClient, PromptGaugeError
from promptgauge.server import cli
from promptgauge.server.accounts import KEY_PREFIX
from promptgauge.server.settings import Settings, env_name


def _env(**extra: str) -> dict[str, str]:
    """This environment without any PROMPTGAUGE_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROMPTGAUGE_")}
    env.update(extra)
    return env


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "promptgauge.server.cli", *args],
        env=_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _ok(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def _last_line_key(result: subprocess.CompletedProcess) -> str:
    """The key a script would capture: the last stdout line, and nothing else on it."""
    key = _ok(result)[-1]
    assert key.startswith(KEY_PREFIX) and len(key) > len(KEY_PREFIX) + 20, result.stdout
    assert key == key.strip() and " " not in key
    return key


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "x.db"


@pytest.fixture
def db_url(db_path):
    return f"sqlite:///{db_path}"


def _key_rows(lines: list[str]) -> dict[str, str]:
    """`keys list` output as {key id: status}."""
    assert lines[0].split()[:2] == ["KEY", "ID"], lines
    rows = {}
    for line in lines[1:]:
        key_id, _day, _time, status = line.split(None, 3)
        rows[key_id] = status
    return rows


def test_account_key_printed_last_works_against_a_server(db_url):
    key = _last_line_key(_cli("accounts", "create", "team-a", "--database-url", db_url))
    with serve_process(db_url) as (_, target), PromptGaugeClient(target, key) as pg:
        created = pg.create_prompt_version("greeting", "Hello {name}")
        assert (created.name, created.version, created.is_active) == ("greeting", 1, True)
        assert pg.render_prompt("greeting", variables={"name": "Ada"}).text == "Hello Ada"


def test_database_url_from_the_environment(db_url, tmp_path):
    env = _env(PROMPTGAUGE_DATABASE_URL=db_url)
    key = _last_line_key(_cli("accounts", "create", "from-env", env=env))
    # The flag-less command wrote to the environment's database...
    assert len(_key_rows(_ok(_cli("keys", "list", "from-env", "--database-url", db_url)))) == 1
    # ...and a flag wins over the environment.
    other = f"sqlite:///{tmp_path / 'other.db'}"
    _last_line_key(_cli("accounts", "create", "from-flag", "--database-url", other, env=env))
    missing = _cli("keys", "list", "from-flag", env=env)
    assert missing.returncode != 0
    with serve_process(db_url) as (_, target), PromptGaugeClient(target, key) as pg:
        assert pg.list_prompts().prompt_versions == []


def test_keys_create_list_and_revoke_against_a_running_server(db_url):
    first = _last_line_key(_cli("accounts", "create", "team-b", "--database-url", db_url))
    with serve_process(db_url) as (_, target):
        with PromptGaugeClient(target, first) as pg:
            pg.create_prompt_version("shared", "one")
        second = _last_line_key(_cli("keys", "create", "team-b", "--database-url", db_url))
        assert second != first
        with PromptGaugeClient(target, second) as pg:
            assert [p.name for p in pg.list_prompts().prompt_versions] == ["shared"]

        listed = _ok(_cli("keys", "list", "team-b", "--database-url", db_url))
        rows = _key_rows(listed)
        assert len(rows) == 2 and set(rows.values()) == {"active"}
        for plain in (first, second):
            assert plain not in "\n".join(listed)
            assert plain.removeprefix(KEY_PREFIX) not in "\n".join(listed)

        first_id = next(iter(rows))  # oldest first: the account's first key
        revoked = _ok(_cli("keys", "revoke", first_id, "--database-url", db_url))
        assert first_id in revoked[-1] and "revoked" in revoked[-1]
        # Replicas cache keys and hear of a revocation by another process
        # within a second (test_key_cache.py): the key fails within that.
        with PromptGaugeClient(target, first) as pg, pytest.raises(PromptGaugeError) as err:
            revoked_at = time.monotonic()
            while time.monotonic() - revoked_at < 1.0:
                pg.list_prompts()
                threading.Event().wait(0.01)  # pace the probe
        assert err.value.code.name == "UNAUTHENTICATED"
        with PromptGaugeClient(target, second) as pg:
            assert [p.name for p in pg.list_prompts().prompt_versions] == ["shared"]

        after = _key_rows(_ok(_cli("keys", "list", "team-b", "--database-url", db_url)))
        assert after[first_id].startswith("revoked ")
        assert [s for k, s in after.items() if k != first_id] == ["active"]
        # Revoking again is harmless and changes nothing.
        _ok(_cli("keys", "revoke", first_id, "--database-url", db_url))
        assert _key_rows(_ok(_cli("keys", "list", "team-b", "--database-url", db_url))) == after


def test_duplicate_account_name_is_refused(db_url):
    _last_line_key(_cli("accounts", "create", "dup", "--database-url", db_url))
    again = _cli("accounts", "create", "dup", "--database-url", db_url)
    assert again.returncode != 0
    assert "dup" in again.stderr and "exists" in again.stderr
    assert KEY_PREFIX not in again.stdout
    assert "Traceback" not in again.stderr
    # Nothing changed: still the one key.
    assert len(_key_rows(_ok(_cli("keys", "list", "dup", "--database-url", db_url)))) == 1


@pytest.mark.parametrize(
    "name", ["Upper", "has space", "-leading-dash", "_leading-underscore", "a" * 129, "ümlaut", "a/b"]
)
def test_invalid_account_name_is_refused(db_url, name):
    result = _cli("accounts", "create", "--database-url", db_url, "--", name)
    assert result.returncode != 0
    assert "not a valid name" in result.stderr
    assert KEY_PREFIX not in result.stdout
    assert "Traceback" not in result.stderr


def test_empty_account_name_is_refused(db_url):
    result = _cli("accounts", "create", "", "--database-url", db_url)
    assert result.returncode != 0
    assert "required" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (("keys", "create", "nobody"), "no account named 'nobody'"),
        (("keys", "list", "nobody"), "no account named 'nobody'"),
        (("keys", "revoke", "key_0000000000000000"), "no API key with id 'key_0000000000000000'"),
    ],
)
def test_unknown_account_or_key_is_an_error(db_url, args, message):
    _last_line_key(_cli("accounts", "create", "somebody", "--database-url", db_url))
    result = _cli(*args, "--database-url", db_url)
    assert result.returncode != 0
    assert message in result.stderr
    assert KEY_PREFIX not in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_cleanly_on_a_signal(db_url, db_path, sig):
    with serve_process(db_url) as (proc, _target):
        proc.send_signal(sig)
        assert proc.wait(timeout=30) == 0, "".join(proc.output)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        (version,) = conn.execute("select value from setting where key = 'schema_version'").fetchone()
    assert int(version) >= 1


def _signal_a_thread_other_than_main(pid: int, sig: int) -> None:
    """Deliver `sig` to one of the process's other threads (a gRPC thread), as
    the kernel may do with any signal sent to the process."""
    libc = ctypes.CDLL(None, use_errno=True)
    if not hasattr(libc, "tgkill") or not Path(f"/proc/{pid}/task").is_dir():
        pytest.skip("needs Linux's tgkill and /proc to signal one thread")
    tids = sorted(int(t.name) for t in Path(f"/proc/{pid}/task").iterdir() if int(t.name) != pid)
    assert tids, "serve runs gRPC threads"
    if libc.tgkill(pid, tids[-1], sig) != 0:
        raise OSError(ctypes.get_errno(), "tgkill")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_serve_stops_on_a_signal_that_reached_another_thread(db_url, sig):
    # Python runs a signal's handler in the main thread, which does not wake
    # from a lock wait for a signal another thread took: serve must not wait so.
    key = _last_line_key(_cli("accounts", "create", "sig", "--database-url", db_url))
    with serve_process(db_url) as (proc, target):
        with PromptGaugeClient(target, key) as pg:
            pg.list_prompts()  # every gRPC thread is up
        _signal_a_thread_other_than_main(proc.pid, sig)
        assert proc.wait(timeout=20) == 0, "".join(proc.output)
    assert f"{sig.name}: stopping" in "".join(proc.output)


def test_restart_keeps_the_data(db_url):
    key = _last_line_key(_cli("accounts", "create", "keeper", "--database-url", db_url))
    with serve_process(db_url) as (proc, target):
        with PromptGaugeClient(target, key) as pg:
            pg.create_prompt_version("kept", "first")
            pg.create_prompt_version("kept", "second", activate=False)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    with serve_process(db_url) as (_, target), PromptGaugeClient(target, key) as pg:
        versions = pg.list_prompt_versions("kept").prompt_versions
        assert sorted((v.version, v.template_text, v.is_active) for v in versions) == [
            (1, "first", True),
            (2, "second", False),
        ]


def test_serve_help_lists_every_setting():
    out = "\n".join(_ok(_cli("serve", "--help", env=_env(COLUMNS="200"))))
    for f in dataclasses.fields(Settings):
        assert "--" + f.name.replace("_", "-") in out, f.name
        assert env_name(f.name) in out, f.name


def test_serve_rejects_a_bad_setting_in_the_environment(db_url):
    result = _cli("serve", "--database-url", db_url, env=_env(PROMPTGAUGE_WORKERS="many"))
    assert result.returncode != 0
    assert "PROMPTGAUGE_WORKERS" in result.stderr


def test_demo_runs_and_prints_what_it_did():
    lines = _ok(_cli("demo"))
    out = "\n".join(lines)
    assert "Rolled back: active is now v1" in out
    assert "Rolled forward: active is now v2" in out
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["VERSION"])
    assert lines[header - 1] == "support-classifier"
    assert [line.split()[0] for line in lines[header + 1 : header + 3]] == ["v1", "v2"]
    # The agents section: PromptRails' walk-through (tests/test_agents.py runs it on both backends).
    assert "10. Promoted 1.1.0:" in out and "11. Rolled back: current is 1.0.0." in out
    assert "    before: support-system v1, support-classifier v2" in out
    assert "    now:    support-system v1, support-classifier v3" in out
    # It ends saying which version wins, by how much and how sure: v2's
    # profile succeeds 89% of the time against v1's 72%, over 2,500 runs each.
    verdict = next(line for line in lines if line.startswith("v2 wins: "))
    assert "13. The last 24 hours against v1" in out
    assert lines.index(verdict) > lines.index("    now:    support-system v1, support-classifier v3")
    assert "against v1's" in verdict and "significant at 95% after Holm's correction" in verdict
    assert re.search(r"p = \d\.\de-\d+", verdict), verdict
    # The key itself, and its id said to be one.
    created = next(line for line in lines if line.startswith("1. "))
    match = re.fullmatch(r"1\. Created account 'demo'; its API key \(id (key_\w+)\) is (\S+)", created)
    assert match and match[2].startswith(KEY_PREFIX) and len(match[2]) > len(KEY_PREFIX) + 20, created


# -- one line, never a traceback ------------------------------------------------

# Every command, run as a person would, with a bad value: argparse's own
# errors, a setting out of range (flag or environment), a database that cannot
# be used, an address that cannot be listened on. {tmp} is the test's
# directory, {busy} a port a socket of the test listens on.

DB_COMMANDS = [
    ("accounts", "create", "team"),
    ("accounts", "list"),
    ("keys", "create", "team"),
    ("keys", "list", "team"),
    ("keys", "revoke", "key_0000000000000000"),
]
BAD_DATABASES = [
    # (URL, exit code, words the line must hold)
    ("sqlite:///{tmp}/missing/x.db", 1, ["directory", "/missing does not exist", "--database-url"]),
    ("postgresql://postgres:s3cret@127.0.0.1:1/test", 1,
     ["postgresql://postgres:***@127.0.0.1:1/test", "nothing accepts connections at 127.0.0.1:1"]),
    ("mysql://root:s3cret@127.0.0.1/test", 2,
     ["--database-url=", "mysql://root:***@", "unsupported scheme 'mysql'"]),
    ("{tmp}/x.db", 2, ["--database-url=", "not a database URL", "sqlite:///PATH"]),
]
SERVE_BAD_SETTINGS = [
    (["--listen", "nonsense"], ["--listen=nonsense", "HOST:PORT"]),
    (["--listen", "127.0.0.1:99999"], ["--listen=127.0.0.1:99999", "0-65535"]),
    (["--listen", "::1:50051"], ["--listen=::1:50051", "[::1]:50051"]),
    (["--listen", ":50051"], ["--listen=:50051", "host"]),
    (["--workers", "0"], ["--workers=0", "at least 1"]),
    (["--workers", "-3"], ["--workers=-3", "at least 1"]),
    (["--max-message-bytes", "0"], ["--max-message-bytes=0", "at least 1"]),
    (["--max-message-bytes", str(2**31)], ["--max-message-bytes=", "at most"]),
    (["--max-template-bytes", "-1"], ["--max-template-bytes=-1", "at least 1"]),
    (["--max-records-per-message", "0"], ["--max-records-per-message=0", "at least 1"]),
    (["--max-stream-errors", "-1"], ["--max-stream-errors=-1", "at least 0"]),
    (["--max-page-size", "0"], ["--max-page-size=0", "at least 1"]),
    (["--grace-seconds", "-1"], ["--grace-seconds=-1", "0 or more"]),
    (["--grace-seconds", "nan"], ["--grace-seconds=nan", "finite"]),
    (["--database-timeout-seconds", "0"], ["--database-timeout-seconds=0", "more than 0"]),
    (["--health-check-seconds", "inf"], ["--health-check-seconds=inf", "finite"]),
    (["--log-level", "LOUD"], ["--log-level=LOUD", "DEBUG, INFO, WARNING, ERROR"]),
    (["--metrics-listen", "9100"], ["--metrics-listen=9100", "HOST:PORT"]),
    (["--http-listen", "8080"], ["--http-listen=8080", "HOST:PORT"]),
    (["--http-listen", "127.0.0.1:http"], ["--http-listen=127.0.0.1:http", "not a number"]),
    (["--tls-cert-file", "{tmp}/c.pem"], ["--tls-cert-file=", "both --tls-cert-file and --tls-key-file"]),
    (["--database-url", "sqlite://x.db"], ["--database-url=sqlite://x.db", "sqlite:///"]),
    (["--database-url", "postgresql://u:s3cret@db.internal/"], ["u:***@", "name the database"]),
    (["--database-url", "mysql://u@h/d"], ["--database-url=mysql://u@h/d", "unsupported scheme"]),
]


def _cases():
    for command in DB_COMMANDS:
        for url, code, words in BAD_DATABASES:
            yield pytest.param([*command, "--database-url", url], {}, code, words,
                               id=f"{' '.join(command[:2])}:{url.split(':')[0]}-{code}")
    for flags, words in SERVE_BAD_SETTINGS:
        yield pytest.param(["serve", *flags], {}, 2, words, id="serve" + "".join(flags))
    environment = [
        ("serve", {"PROMPTGAUGE_WORKERS": "many"}, ["PROMPTGAUGE_WORKERS=many", "whole number"]),
        ("serve", {"PROMPTGAUGE_LISTEN": "127.0.0.1:-1"}, ["PROMPTGAUGE_LISTEN=127.0.0.1:-1", "HOST:PORT"]),
        ("serve", {"PROMPTGAUGE_GRACE_SECONDS": "soon"}, ["PROMPTGAUGE_GRACE_SECONDS=soon", "not a float"]),
        ("serve", {"PROMPTGAUGE_HTTP_LISTEN": "web"}, ["PROMPTGAUGE_HTTP_LISTEN=web", "HOST:PORT"]),
        ("keys list team", {"PROMPTGAUGE_DATABASE_URL": "oracle://u:s3cret@h/d"},
         ["PROMPTGAUGE_DATABASE_URL=", "oracle://u:***@h/d", "unsupported scheme"]),
    ]
    for command, env, words in environment:
        yield pytest.param(command.split(), env, 2, words, id=f"env-{command}-{next(iter(env))}")
    usage = [
        ([], "required: COMMAND"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["keys"], "required: ACTION"),
        (["accounts", "create"], "required: name"),
        (["keys", "revoke", "--database-url"], "expected one argument"),
        (["serve", "--workers", "many"], "invalid int value: 'many'"),
        (["serve", "--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["demo", "--fast"], "unrecognized arguments: --fast"),
        (["compare"], "required: name"),
        (["compare", "p", "--since", "yesterday"], "'yesterday' is not a duration"),
        (["compare", "p", "--since", "0h"], "'0h' is not a duration"),
        (["compare", "p", "--baseline", "0"], "'0' is not a version"),
        (["compare", "p", "--confidence", "95"], "'95' is not a confidence level"),
        (["prompts"], "required: ACTION"),
        (["prompts", "show"], "required: NAME[@VERSION|:LABEL]"),
        (["prompts", "create", "p"], "required: --file"),
        (["prompts", "activate", "p"], "required: version"),
        (["prompts", "diff", "p", "1"], "required: TO"),
        (["prompts", "show", "Bad-Name"], "'Bad-Name' is not a valid name"),
        (["prompts", "show", "p@0"], "'0' is not a version"),
        (["prompts", "show", "p@v2"], "'v2' is not a version"),
        (["prompts", "versions", ""], "name is required"),
        (["prompts", "activate", "p", "-1"], "'-1' is not a version"),
        (["prompts", "activate", "p", "99999999999"], "'99999999999' is not a version"),
        (["prompts", "create", "p", "--file", "x", "--version", "0"], "'0' is not a version"),
        (["prompts", "create", "p", "--file", "x", "--parent", "one"], "'one' is not a version"),
        (["prompts", "render", "p", "--var", "novalue"], "'novalue' is not KEY=VALUE"),
        (["prompts", "render", "p", "--var", "=v"], "'=v' is not KEY=VALUE"),
        (["prompts", "list", "--timeout", "0"], "'0' is not a number of seconds"),
        (["prompts", "list", "--timeout", "soon"], "'soon' is not a number of seconds"),
        (["prompts", "list", "--bogus"], "unrecognized arguments: --bogus"),
        (["prompts", "show", "p:Prod"], "label 'Prod' is not a valid label"),
        (["prompts", "render", "p:", "--var", "a=b"], "label is required"),
        (["prompts", "split", "p", "1=x"], "'1=x' is not VERSION=WEIGHT"),
        (["prompts", "split", "p", "0=5"], "'0' is not a version"),
        (["accounts", "list", "--json", "extra"], "unrecognized arguments: extra"),
    ]
    for args, words in usage:
        yield pytest.param(args, {}, 2, [words, "--help"], id="usage-" + "-".join(args))
    compare = [
        (["--target", "127.0.0.1:99999", "--api-key", "k"], 2, ["--target=127.0.0.1:99999", "0-65535"]),
        (["--target", "nonsense", "--api-key", "k"], 2, ["--target=nonsense", "HOST:PORT"]),
        (["--target", "127.0.0.1:1"], 2, ["--api-key", "PROMPTGAUGE_API_KEY"]),
        (["--target", "127.0.0.1:1", "--api-key", "k"], 1, ["no promptgauge server answers", "127.0.0.1:1"]),
    ]
    for flags, code, words in compare:
        yield pytest.param(["compare", "p", *flags], {}, code, words, id="compare" + "".join(flags))
    # Every prompts command, with what it needs to reach a server wrong.
    prompts = [["list"], ["versions", "p"], ["show", "p@2"], ["create", "p", "--file", "/etc/hostname"],
               ["activate", "p", "2"], ["render", "p", "--var", "a=b"], ["diff", "p", "1", "2"],
               ["show", "p:production"], ["split", "p", "1=90", "2=10"], ["split", "p", "--clear"]]
    reach = [
        (["--target", "127.0.0.1:99999", "--api-key", "k"], {}, 2, ["--target=127.0.0.1:99999", "0-65535"]),
        (["--api-key", "k"], {"PROMPTGAUGE_TARGET": "nowhere"}, 2,
         ["PROMPTGAUGE_TARGET=nowhere", "HOST:PORT"]),
        (["--target", "127.0.0.1:1"], {}, 2, ["--api-key", "PROMPTGAUGE_API_KEY"]),
        (["--target", "127.0.0.1:1", "--api-key", "k"], {}, 1,
         ["no promptgauge server answers at --target=127.0.0.1:1", "connection refused"]),
        ([], {"PROMPTGAUGE_TARGET": "127.0.0.1:1", "PROMPTGAUGE_API_KEY": "k"}, 1,
         ["no promptgauge server answers at PROMPTGAUGE_TARGET=127.0.0.1:1"]),
        (["--target", "127.0.0.1:1", "--api-key", "k", "--tls-ca-file", "{tmp}/none.pem"], {}, 1,
         ["--tls-ca-file=", "none.pem: cannot read it"]),
        (["--target", "127.0.0.1:1", "--api-key", "k"], {"PROMPTGAUGE_TLS_CA_FILE": "{tmp}/none.pem"}, 1,
         ["PROMPTGAUGE_TLS_CA_FILE=", "none.pem: cannot read it"]),
        (["--target", "127.0.0.1:1", "--api-key", "k", "--tls-client-cert-file", "c.pem"], {}, 2,
         ["mutual TLS needs both --tls-client-cert-file and --tls-client-key-file"]),
    ]
    # Each way of getting it wrong once, and every command with no server to answer it.
    cases = [(prompts[0], case) for case in reach] + [(command, reach[3]) for command in prompts[1:]]
    for command, (flags, env, code, words) in cases:
        yield pytest.param(["prompts", *command, *flags], env, code, words,
                           id=f"prompts-{command[0]}{''.join(flags)}{''.join(env)}-{code}")
    environment_problems = [
        # Well-formed, but this machine cannot do it: nothing starts.
        (["--listen", "127.0.0.1:{busy}"], ["address 127.0.0.1:{busy} is in use", "--listen"]),
        (["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:{busy}"],
         ["address 127.0.0.1:{busy} is in use", "--metrics-listen"]),
        (["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:{busy}"],
         ["address 127.0.0.1:{busy} is in use", "--http-listen"]),
        (["--listen", "192.0.2.1:0"], ["192.0.2.1 is not an address of this machine"]),
        (["--listen", "no-such-host.invalid:0"], ["host no-such-host.invalid does not resolve"]),
        (["--tls-cert-file", "{tmp}/none.pem", "--tls-key-file", "{tmp}/none.key"],
         ["--tls-cert-file=", "/none.pem: cannot read it"]),
    ]
    for flags, words in environment_problems:
        yield pytest.param(["serve", *flags], {}, 1, words, id="serve-env" + "".join(flags))


def assert_one_line(result: subprocess.CompletedProcess, code: int, words: list[str]) -> str:
    """The command failed with `code` and said so in one line holding `words`."""
    everything = result.stdout + result.stderr
    assert "Traceback" not in everything, everything
    assert "internal error" not in everything, everything
    assert "s3cret" not in everything, everything
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("promptgauge"), result.stderr
    assert result.stdout == "", result.stdout
    assert result.returncode == code, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.fixture
def busy_port():
    """A port this test listens on, as another server would."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        yield held.getsockname()[1]


@pytest.mark.parametrize("args, env, code, words", list(_cases()))
def test_every_command_says_what_is_wrong_in_one_line(tmp_path, busy_port, args, env, code, words):
    values = {"tmp": tmp_path, "busy": busy_port}
    env = {k: v.format(**values) for k, v in env.items()}
    result = _cli(*(a.format(**values) for a in args), env=_env(**env))
    assert_one_line(result, code, [w.format(**values) for w in words])
    # Nothing started: no database was created, nothing was served.
    assert list(tmp_path.iterdir()) == []


def _pg_url(database: str) -> str:
    if not PG_URL:
        skip_without_postgres()
    return urlparse(PG_URL)._replace(path="/" + database, query="").geturl()


@pytest.mark.postgres
@pytest.mark.parametrize("command", DB_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_postgresql_database_that_does_not_exist_says_createdb(command):
    url = _pg_url("no_such_db_xyz")
    assert_one_line(
        _cli(*command, "--database-url", url),
        1,
        ["database no_such_db_xyz does not exist", "createdb no_such_db_xyz", "--database-url"],
    )


@pytest.mark.postgres
def test_an_unknown_postgresql_role_is_named():
    parsed = urlparse(_pg_url("test"))
    url = parsed._replace(netloc=f"no_such_role_xyz:s3cret@{parsed.hostname}:{parsed.port or 5432}").geturl()
    assert_one_line(
        _cli("keys", "list", "team", "--database-url", url),
        1,
        ["no_such_role_xyz:***@", "role no_such_role_xyz does not exist", "createuser"],
    )


def test_a_second_server_on_a_port_in_use_refuses_to_start(tmp_path):
    first_db, second_db = tmp_path / "first.db", tmp_path / "second.db"
    with serve_process(f"sqlite:///{first_db}") as (proc, target):
        second = _cli("serve", "--listen", target, "--database-url", f"sqlite:///{second_db}")
        assert_one_line(second, 1, [f"address {target} is in use", "another promptgauge serve?"])
        assert not second_db.exists()
        assert proc.poll() is None
        with PromptGaugeClient(target, "pgk_nobody") as pg, pytest.raises(PromptGaugeError) as err:
            pg.list_prompts()
        assert err.value.code.name == "UNAUTHENTICATED"  # the first server still answers


def test_an_unexpected_error_is_one_line_asking_for_a_report(monkeypatch, capsys):
    def broken(args):
        raise KeyError("boom")

    monkeypatch.setattr(cli, "cmd_accounts_list", broken)
    assert cli.main(["accounts", "list"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == [
        "promptgauge: internal error: KeyError: 'boom' (at test_cli.py:"
        f"{broken.__code__.co_firstlineno + 1}); please report it"
    ]


# -- what the commands print ----------------------------------------------------


def _account_rows(lines: list[str]) -> dict[str, tuple[int, int]]:
    """`accounts list` output as {name: (active keys, revoked keys)}."""
    assert lines[0].split() == ["NAME", "CREATED", "(UTC)", "ACTIVE", "KEYS", "REVOKED", "KEYS"], lines
    rows = {}
    for line in lines[1:]:
        name, _day, _time, active, revoked = line.split()
        rows[name] = (int(active), int(revoked))
    return rows


@pytest.mark.parametrize("kind", BACKENDS)
def test_accounts_list_counts_active_and_revoked_keys(kind, tmp_path):
    with database_url(kind, tmp_path) as db_url:
        _list_accounts_of(db_url)


def _list_accounts_of(db_url: str) -> None:
    assert _account_rows(_ok(_cli("accounts", "list", "--database-url", db_url))) == {}
    _last_line_key(_cli("accounts", "create", "zeta", "--database-url", db_url))
    _last_line_key(_cli("accounts", "create", "alpha", "--database-url", db_url))
    for _ in range(2):
        _last_line_key(_cli("keys", "create", "alpha", "--database-url", db_url))
    first = next(iter(_key_rows(_ok(_cli("keys", "list", "alpha", "--database-url", db_url)))))
    _ok(_cli("keys", "revoke", first, "--database-url", db_url))

    lines = _ok(_cli("accounts", "list", "--database-url", db_url))
    assert list(_account_rows(lines)) == ["alpha", "zeta"]
    assert _account_rows(lines) == {"alpha": (2, 1), "zeta": (1, 0)}
    assert KEY_PREFIX not in "\n".join(lines)


def test_accounts_create_names_the_database(db_url):
    lines = _ok(_cli("accounts", "create", "where", "--database-url", db_url))
    assert f"in {db_url};" in lines[0]


def _first_line_of_serve(*args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "promptgauge.server.cli", "serve", *args],
        env=_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    return proc, proc.stdout.readline().strip()


def test_serve_prints_the_address_it_bound_and_the_masked_database():
    # A database that does not answer: the server starts all the same.
    url = "postgresql://promptgauge:s3cret@127.0.0.1:1/promptgauge"
    proc, line = _first_line_of_serve("--listen", "0.0.0.0:0", "--database-url", url,
                                      "--metrics-listen", "0.0.0.0:0")
    try:
        match = re.fullmatch(
            r"promptgauge listening on 0\.0\.0\.0:(\d+)"
            r" \(database (\S+), metrics on 0\.0\.0\.0:(\d+)/metrics\)",
            line,
        )
        assert match, line
        assert match[2] == "postgresql://promptgauge:***@127.0.0.1:1/promptgauge"
        port = int(match[1])
        assert port != 0
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
        with urllib.request.urlopen(f"http://127.0.0.1:{match[3]}/metrics", timeout=10) as answer:
            assert b"promptgauge_rpcs" in answer.read()
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0



def test_serve_with_http_listen_serves_the_dashboard_and_stops_cleanly(db_url):
    key = _last_line_key(_cli("accounts", "create", "web", "--database-url", db_url))
    with serve_process(db_url, "--http-listen", "127.0.0.1:0") as (proc, target):
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", proc.dashboard_url), proc.output
        with urllib.request.urlopen(proc.dashboard_url + "/signin", timeout=30) as response:
            assert 'name="api_key"' in response.read().decode()
        with PromptGaugeClient(target, key) as pg:  # the gRPC port is served as before
            assert pg.list_prompts().prompt_versions == []
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
