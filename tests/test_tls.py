"""TLS and mutual TLS, with a CA and certificates made inside the test, on a
real `promptgauge serve` process."""

import datetime
import ipaddress
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from conftest import create_account, serve_process
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from promptgauge.client import PromptGaugeClient, PromptGaugeError
from promptgauge.client.client import NO_RETRY


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(subject: str, issuer_key, issuer_name, *, ca: bool = False, server: bool = False):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name or _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return key, cert


def _write(folder: Path, stem: str, key, cert) -> tuple[Path, Path]:
    key_path, cert_path = folder / f"{stem}.key", folder / f"{stem}.crt"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1, a client certificate it
    signed, and a second CA that signed nothing of ours."""
    folder = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _issue("promptgauge test CA", None, None, ca=True)
    server_key, server_cert = _issue("127.0.0.1", ca_key, ca_cert.subject, server=True)
    client_key, client_cert = _issue("agent-1", ca_key, ca_cert.subject)
    other_ca_key, other_ca_cert = _issue("another CA", None, None, ca=True)
    stranger_key, stranger_cert = _issue("stranger", other_ca_key, other_ca_cert.subject)
    paths = {}
    for stem, key, cert in (
        ("ca", ca_key, ca_cert),
        ("server", server_key, server_cert),
        ("client", client_key, client_cert),
        ("other-ca", other_ca_key, other_ca_cert),
        ("stranger", stranger_key, stranger_cert),
    ):
        paths[stem + "_key"], paths[stem] = _write(folder, stem, key, cert)
    return paths


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'tls.db'}"


def _key(url: str) -> str:
    # By the real command, in its own process: rebinding this process's
    # database would pull it from under the in-process test server.
    return create_account(url, "tls-team")


def _tls_flags(pki, mutual: bool = False) -> list[str]:
    flags = ["--tls-cert-file", str(pki["server"]), "--tls-key-file", str(pki["server_key"])]
    return flags + (["--tls-client-ca-file", str(pki["ca"])] if mutual else [])


def test_tls_server_serves_a_client_that_trusts_its_ca(pki, db_url):
    key = _key(db_url)
    with serve_process(db_url, *_tls_flags(pki)) as (_, target):
        with PromptGaugeClient(target, key, root_certificates=pki["ca"]) as pg:
            assert pg.create_prompt_version("greeting", "Hello {name}").version == 1
            assert pg.render_prompt("greeting", {"name": "Ada"}).text == "Hello Ada"


def test_tls_server_refuses_a_plaintext_client_and_an_untrusting_one(pki, db_url):
    key = _key(db_url)
    with serve_process(db_url, *_tls_flags(pki)) as (_, target):
        with PromptGaugeClient(target, key, retry=NO_RETRY, timeout=5) as plaintext:
            with pytest.raises(PromptGaugeError) as error:
                plaintext.list_prompts()
            assert error.value.code == grpc.StatusCode.UNAVAILABLE
        with PromptGaugeClient(
            target, key, root_certificates=pki["other-ca"], retry=NO_RETRY, timeout=5
        ) as untrusting:
            with pytest.raises(PromptGaugeError) as error:
                untrusting.list_prompts()
            assert error.value.code == grpc.StatusCode.UNAVAILABLE


def test_mutual_tls_needs_a_client_certificate_signed_by_the_client_ca(pki, db_url):
    key = _key(db_url)
    with serve_process(db_url, *_tls_flags(pki, mutual=True)) as (_, target):
        with PromptGaugeClient(
            target, key, root_certificates=pki["ca"],
            client_certificate=pki["client"], client_key=pki["client_key"],
        ) as pg:
            assert pg.create_prompt_version("greeting", "Hello {name}").version == 1

        for certificate, private_key in ((None, None), (pki["stranger"], pki["stranger_key"])):
            with PromptGaugeClient(
                target, key, root_certificates=pki["ca"],
                client_certificate=certificate, client_key=private_key,
                retry=NO_RETRY, timeout=5,
            ) as refused:
                with pytest.raises(PromptGaugeError) as error:
                    refused.list_prompts()
                assert error.value.code == grpc.StatusCode.UNAVAILABLE


def test_tls_still_needs_the_api_key(pki, db_url):
    _key(db_url)
    with serve_process(db_url, *_tls_flags(pki)) as (_, target):
        with PromptGaugeClient(target, "pgk_not-a-key", root_certificates=pki["ca"]) as pg:
            with pytest.raises(PromptGaugeError) as error:
                pg.list_prompts()
            assert error.value.code == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--tls-cert-file", "{server}"], "both --tls-cert-file and --tls-key-file"),
        (["--tls-client-ca-file", "{ca}"], "--tls-client-ca-file needs"),
        (["--tls-cert-file", "/nonexistent.crt", "--tls-key-file", "{server_key}"], "cannot read"),
        (["--tls-cert-file", "{server}", "--tls-key-file", "{client_key}"], "key is not the certificate's"),
        (["--tls-cert-file", "{server_key}", "--tls-key-file", "{server_key}"], "not a PEM certificate"),
        (["--tls-cert-file", "{server}", "--tls-key-file", "{server_key}", "--tls-client-ca-file",
          "{server_key}"], "--tls-client-ca-file={server_key}: not a PEM CA bundle"),
    ],
)
def test_incomplete_tls_settings_stop_the_server_with_a_clear_message(pki, db_url, flags, message):
    values = {k: str(v) for k, v in pki.items()}
    args = [f.format(**values) for f in flags]
    result = subprocess.run(
        [sys.executable, "-m", "promptgauge.server.cli", "serve", "--listen", "127.0.0.1:0",
         "--database-url", db_url, *args],
        capture_output=True, text=True, timeout=60,
    )
    # One line, before anything started: no log, no database.
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert message.format(**values) in result.stderr
    assert not Path(db_url.removeprefix("sqlite:///")).exists()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "promptgauge.server.cli", *args],
        capture_output=True, text=True, timeout=60,
    )


def test_the_prompts_commands_speak_mutual_tls(pki, db_url, tmp_path):
    key = _key(db_url)
    (tmp_path / "t.txt").write_text("Hello {name}")
    with serve_process(db_url, *_tls_flags(pki, mutual=True)) as (_, target):
        flags = ["--target", target, "--api-key", key, "--tls-ca-file", str(pki["ca"]),
                 "--tls-client-cert-file", str(pki["client"]),
                 "--tls-client-key-file", str(pki["client_key"])]
        created = _cli("prompts", "create", "greeting", "--file", str(tmp_path / "t.txt"), *flags)
        assert (created.returncode, created.stdout) == (0, "created greeting v1 (active)\n"), created.stderr
        rendered = _cli("prompts", "render", "greeting", "--var", "name=Ada", *flags)
        assert (rendered.returncode, rendered.stdout) == (0, "Hello Ada\n"), rendered.stderr
        # Without its client certificate the handshake fails: one line, exit 1.
        refused = _cli("prompts", "list", *flags[:6])
        assert refused.returncode == 1 and refused.stdout == "" and len(refused.stderr.splitlines()) == 1


def test_the_dashboard_serves_https_with_the_servers_certificate(pki, db_url):
    key = _key(db_url)
    with serve_process(db_url, *_tls_flags(pki), "--http-listen", "127.0.0.1:0") as (proc, _):
        assert proc.dashboard_url.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(pki["ca"]))
        with urllib.request.urlopen(proc.dashboard_url + "/signin", context=context, timeout=30) as response:
            cookie = response.headers["Set-Cookie"]
            body = response.read().decode()
        assert 'name="api_key"' in body
        # Under TLS the session cookie never travels in clear.
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert key not in body
        with pytest.raises(OSError):  # plain HTTP gets no page: the connection is cut
            urllib.request.urlopen(proc.dashboard_url.replace("https", "http") + "/signin", timeout=10)
