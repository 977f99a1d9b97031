"""The `promptgauge` command as real subprocesses: accounts and keys on a
database given by flag or environment, and `serve`'s lifecycle."""

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys

import pytest
from conftest import serve_process

from promptgauge.client import PromptGaugeClient, PromptGaugeError
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
        with PromptGaugeClient(target, first) as pg, pytest.raises(PromptGaugeError) as err:
            pg.list_prompts()
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
