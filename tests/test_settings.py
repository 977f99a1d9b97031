"""Settings checks and masking, without a server: what `promptgauge serve`
refuses before it starts, and what it prints."""

import argparse

import pytest

from promptgauge.server.settings import (
    SettingError,
    Settings,
    from_args,
    join_host_port,
    mask_url,
    split_host_port,
)


@pytest.mark.parametrize(
    "address, expected",
    [
        ("127.0.0.1:50051", ("127.0.0.1", 50051)),
        ("0.0.0.0:0", ("0.0.0.0", 0)),
        ("localhost:65535", ("localhost", 65535)),
        ("db-1.internal:80", ("db-1.internal", 80)),
        ("[::]:50051", ("::", 50051)),
        ("[::1]:1", ("::1", 1)),
        ("[fe80::1%eth0]:9", ("fe80::1%eth0", 9)),
    ],
)
def test_good_addresses_split_into_host_and_port(address, expected):
    assert split_host_port(address) == expected
    assert join_host_port(*expected) == address


@pytest.mark.parametrize(
    "address, problem",
    [
        ("nonsense", "expected HOST:PORT"),
        ("50051", "expected HOST:PORT"),
        ("127.0.0.1:99999", "port 99999 is out of range: use 0-65535"),
        ("127.0.0.1:65536", "port 65536 is out of range"),
        ("127.0.0.1:-1", "port '-1' is not a number"),
        ("127.0.0.1:", "port '' is not a number"),
        ("127.0.0.1:５", "port '５' is not a number"),
        ("::1:50051", "put an IPv6 address in brackets: [::1]:50051"),
        ("[nope]:1", "'nope' in brackets is not an IPv6 address"),
        (":50051", "give a host"),
        ("a host:1", "'a host' is not a host name or address"),
    ],
)
def test_bad_addresses_say_what_is_wrong(address, problem):
    with pytest.raises(ValueError) as error:
        split_host_port(address)
    assert problem in str(error.value)


@pytest.mark.parametrize(
    "url, masked",
    [
        ("postgresql://pg:s3cret@db:5432/app", "postgresql://pg:***@db:5432/app"),
        ("postgresql://pg:p%40ss:w@db/app", "postgresql://pg:***@db/app"),
        ("postgresql://pg:@db/app", "postgresql://pg:***@db/app"),
        ("postgresql://db/app?sslmode=require&password=s3cret", "postgresql://db/app?sslmode=require&password=***"),
        ("postgresql://pg@db/app", "postgresql://pg@db/app"),
        ("sqlite:///promptgauge.db", "sqlite:///promptgauge.db"),
        ("sqlite:////var/lib/x.db", "sqlite:////var/lib/x.db"),
    ],
)
def test_mask_url_hides_passwords_and_nothing_else(url, masked):
    assert mask_url(url) == masked


def test_masked_settings_hide_the_database_password():
    settings = Settings(database_url="postgresql://pg:s3cret@db/app")
    assert settings.masked()["database_url"] == "postgresql://pg:***@db/app"
    assert "s3cret" not in repr(settings.masked())


def test_the_defaults_are_valid():
    assert Settings().validate() == Settings()


@pytest.mark.parametrize(
    "name, value, problem",
    [
        ("workers", 0, "must be at least 1"),
        ("max_message_bytes", 2**31, "must be at most 2147483647"),
        ("max_stream_errors", -1, "must be at least 0"),
        ("grace_seconds", -0.5, "must be 0 or more seconds"),
        ("grace_seconds", float("inf"), "finite"),
        ("database_timeout_seconds", 0.0, "must be more than 0 seconds"),
        ("health_check_seconds", float("nan"), "finite"),
        ("log_level", "TRACE", "DEBUG, INFO, WARNING, ERROR"),
        ("metrics_listen", "9100", "expected HOST:PORT"),
        ("http_listen", "localhost", "expected HOST:PORT"),
        ("http_listen", "127.0.0.1:70000", "out of range"),
        ("database_url", "sqlite://promptgauge.db", "sqlite:/// then the path"),
        ("database_url", "sqlite:///", "sqlite:/// then the path"),
        ("database_url", "postgresql://db:port/app", "port is not a number"),
        ("database_url", "postgresql://db:0/app", "port 0"),
        ("database_url", "postgresql://db", "name the database"),
        ("database_url", "promptgauge.db", "not a database URL"),
        ("database_url", "mysql://db/app", "unsupported scheme 'mysql'"),
    ],
)
def test_validate_names_the_setting_and_the_fix(name, value, problem):
    with pytest.raises(SettingError) as error:
        Settings(**{name: value}).validate()
    assert error.value.name == name
    assert problem in str(error.value)
    assert str(error.value).startswith("--" + name.replace("_", "-") + "=")


@pytest.mark.parametrize(
    "values",
    [
        {"grace_seconds": 0.0},
        {"max_stream_errors": 0},
        {"log_level": "warning"},
        {"listen": "[::]:0", "metrics_listen": "0.0.0.0:9100", "http_listen": "[::1]:8080"},
        {"database_url": "postgresql://pg:pw@db:5433/app?sslmode=require"},
        {"database_url": "postgres+pool://db/app"},
        {"database_url": "sqlite:////var/lib/promptgauge/x.db"},
        {"tls_cert_file": "c.pem", "tls_key_file": "k.pem", "tls_client_ca_file": "ca.pem"},
    ],
)
def test_validate_accepts_good_values(values):
    settings = Settings(**values)
    assert settings.validate() is settings


@pytest.mark.parametrize(
    "values, problem",
    [
        ({"tls_cert_file": "c.pem"}, "TLS needs both --tls-cert-file and --tls-key-file"),
        ({"tls_key_file": "k.pem"}, "TLS needs both --tls-cert-file and --tls-key-file"),
        ({"tls_client_ca_file": "ca.pem"}, "--tls-client-ca-file needs"),
    ],
)
def test_incomplete_tls_settings_are_refused(values, problem):
    with pytest.raises(SettingError, match=problem):
        Settings(**values).validate()


def test_a_database_password_never_shows_in_the_error():
    with pytest.raises(SettingError) as error:
        Settings(database_url="mysql://root:s3cret@db/app").validate()
    assert "s3cret" not in str(error.value)
    assert "mysql://root:***@db/app" in str(error.value)


def test_from_args_names_the_environment_variable_or_the_flag(monkeypatch):
    monkeypatch.setenv("PROMPTGAUGE_WORKERS", "0")
    with pytest.raises(SettingError) as error:
        from_args(argparse.Namespace())
    assert str(error.value) == "PROMPTGAUGE_WORKERS=0: must be at least 1"
    with pytest.raises(SettingError) as error:
        from_args(argparse.Namespace(workers=-2))
    assert str(error.value) == "--workers=-2: must be at least 1"
    assert from_args(argparse.Namespace(workers=3)).workers == 3


def test_from_args_reads_and_checks_only_what_it_is_asked(monkeypatch):
    monkeypatch.setenv("PROMPTGAUGE_WORKERS", "many")
    monkeypatch.setenv("PROMPTGAUGE_DATABASE_URL", "sqlite:///from-env.db")
    assert from_args(argparse.Namespace(), only=("database_url",)).database_url == "sqlite:///from-env.db"
    with pytest.raises(SettingError, match="PROMPTGAUGE_WORKERS=many: not a whole number"):
        from_args(argparse.Namespace())
