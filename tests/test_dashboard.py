"""The dashboard over real HTTP (no browser): sign-in, sessions, CSRF,
escaping, errors and account isolation, on both backends; and its pure parts
(sessions, charts, the diff) as units. tests/test_dashboard_browser.py
drives it in a real browser."""

import base64
import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from conftest import make_account
from markupsafe import escape

from promptgauge.client import PromptGaugeClient
from promptgauge.server import accounts, storage
from promptgauge.server.dashboard import charts, sessions
from promptgauge.server.dashboard.pages import WINDOWS, field_value, p_value, pp, side_by_side, window_of
from promptgauge.server.errors import InvalidArgument
from promptgauge.server.registry import VersionView
from promptgauge.v1 import agents_pb2


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Web:
    """A browser without a browser: a cookie jar, no redirects followed."""

    def __init__(self, base: str):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect())

    def request(self, path: str, form: dict | None = None):
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            response = self.opener.open(self.base + path, data=data, timeout=30)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            return response.status, response.headers, response.read().decode()

    def get(self, path: str):
        return self.request(path)

    def post(self, path: str, form: dict):
        return self.request(path, form)

    def cookie(self) -> str | None:
        return next((c.value for c in self.jar if c.name == sessions.COOKIE), None)

    def csrf(self, path: str) -> str:
        """The CSRF token of the form on `path`."""
        status, _, body = self.get(path)
        assert status == 200, body
        return re.search(r'name="csrf_token" value="([^"]+)"', body)[1]

    def sign_in(self, api_key: str) -> None:
        status, headers, body = self.post("/signin", {"csrf_token": self.csrf("/signin"), "api_key": api_key})
        assert status == 303 and headers["Location"] == "/", body


@pytest.fixture
def web(server) -> Web:
    return Web(server.dashboard_url)


@pytest.fixture
def signed_in(web, api_key) -> Web:
    web.sign_in(api_key)
    return web


def _active(client, name: str) -> int:
    return client.get_prompt_version(name).version


def test_pages_ask_to_sign_in_first(web):
    for path in (
        "/",
        "/prompts/x",
        "/prompts/x/versions/1",
        "/prompts/x/diff",
        "/prompts/x/activate?version=1",
        "/agents",
        "/agents/x",
        "/agents/x/promote?version=v1",
    ):
        status, headers, _ = web.get(path)
        assert status == 303, path
        assert headers["Location"].startswith("/signin"), path
    assert web.get("/prompts/x")[1]["Location"] == "/signin?next=/prompts/x"


def test_session_cookie_is_httponly_strict_and_never_holds_the_key(web, api_key):
    _, headers, _ = web.get("/signin")
    anonymous = headers["Set-Cookie"]
    assert "HttpOnly" in anonymous and "SameSite=Strict" in anonymous and "Path=/" in anonymous
    status, headers, _ = web.post("/signin", {"csrf_token": web.csrf("/signin"), "api_key": api_key})
    assert status == 303
    cookie = headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    value = web.cookie()
    body = value.split(".")[0]
    decoded = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()
    secret = api_key.removeprefix(accounts.KEY_PREFIX)
    assert secret not in value and secret not in decoded and secret not in cookie
    assert '"k":"key_' in decoded  # the key's id, signed


def test_a_wrong_key_is_refused_and_signs_nobody_in(web, api_key):
    status, _, body = web.post("/signin", {"csrf_token": web.csrf("/signin"), "api_key": api_key + "x"})
    assert status == 401 and "not valid" in body
    assert web.get("/")[0] == 303


def test_sign_in_goes_to_the_page_asked_for(web, client, api_key):
    client.create_prompt_version("wanted", "text")
    location = web.get("/prompts/wanted")[1]["Location"]
    token = web.csrf(location)
    status, headers, _ = web.post(
        "/signin", {"csrf_token": token, "api_key": api_key, "next": "/prompts/wanted"}
    )
    assert (status, headers["Location"]) == (303, "/prompts/wanted")
    # Never off this site.
    web.post("/signout", {"csrf_token": web.csrf("/")})
    for elsewhere in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        status, headers, _ = web.post(
            "/signin", {"csrf_token": web.csrf("/signin"), "api_key": api_key, "next": elsewhere}
        )
        assert headers["Location"] == "/", elsewhere
        web.post("/signout", {"csrf_token": web.csrf("/")})


def test_sign_out_ends_the_session(signed_in):
    assert signed_in.get("/")[0] == 200
    status, headers, _ = signed_in.post("/signout", {"csrf_token": signed_in.csrf("/")})
    assert (status, headers["Location"]) == (303, "/signin")
    assert signed_in.cookie() is None
    assert signed_in.get("/")[0] == 303


def test_a_revoked_key_ends_its_sessions_at_once(web, server):
    plain = make_account()
    web.sign_in(plain)
    assert web.get("/")[0] == 200
    with storage.db.connection_context():
        key_id = accounts.authenticate(storage.store(), f"Bearer {plain}").key_id
        accounts.revoke_key(key_id)
    status, headers, _ = web.get("/")
    assert (status, headers["Location"]) == (303, "/signin")


def test_a_forged_or_tampered_cookie_is_no_session(signed_in, server):
    value = signed_in.cookie()
    body, signature = value.split(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature
    for bad in (forged, body + "." + signature[::-1], "nonsense", ""):
        web = Web(server.dashboard_url)
        web.jar.set_cookie(_cookie(bad))
        assert web.get("/")[0] == 303, bad


def _cookie(value: str) -> http.cookiejar.Cookie:
    return http.cookiejar.Cookie(
        0,
        sessions.COOKIE,
        value,
        None,
        False,
        "127.0.0.1",
        False,
        False,
        "/",
        True,
        False,
        None,
        False,
        None,
        None,
        {},
    )


def test_every_state_change_needs_the_sessions_csrf_token(signed_in, client, server, api_key):
    client.create_prompt_version("guarded", "one")
    client.create_prompt_version("guarded", "two", activate=False)
    other = Web(server.dashboard_url)
    other.sign_in(api_key)
    foreign = other.csrf("/")  # a valid token, of another session
    for token in (None, "", "x" * 43, foreign):
        form = {"version": "2"} | ({} if token is None else {"csrf_token": token})
        status, _, body = signed_in.post("/prompts/guarded/activate", form)
        assert status == 403 and "reload the page" in body, token
        assert _active(client, "guarded") == 1
        status, _, _ = signed_in.post("/signout", {} if token is None else {"csrf_token": token})
        assert status == 403
        assert signed_in.get("/")[0] == 200  # still signed in
    fresh = Web(server.dashboard_url)
    fresh.get("/signin")
    assert fresh.post("/signin", {"api_key": api_key})[0] == 403
    assert fresh.get("/")[0] == 303


def test_promote_and_roll_back_through_the_confirmation(signed_in, client):
    client.create_prompt_version("flow", "one {x}")
    client.create_prompt_version("flow", "two {x}", activate=False)
    status, _, page = signed_in.get("/prompts/flow/activate?version=2")
    assert status == 200 and "Promote flow to v2?" in page and "Active now: <strong>v1</strong>" in page
    assert _active(client, "flow") == 1  # asking changes nothing
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    status, headers, _ = signed_in.post("/prompts/flow/activate", {"csrf_token": token, "version": "2"})
    assert (status, headers["Location"]) == (303, "/prompts/flow?activated=2")
    assert _active(client, "flow") == 2
    assert "v2 is now the active version of flow" in signed_in.get("/prompts/flow?activated=2")[2]
    page = signed_in.get("/prompts/flow/activate?version=1")[2]
    assert "Roll back flow to v1?" in page
    signed_in.post("/prompts/flow/activate", {"csrf_token": token, "version": "1"})
    assert _active(client, "flow") == 1


@pytest.mark.parametrize("version, status", [("0", 400), ("abc", 400), ("-1", 400), ("", 400), ("99", 404)])
def test_a_bad_activation_changes_nothing(signed_in, client, version, status):
    client.create_prompt_version("steady", "one")
    token = signed_in.csrf("/")
    got, _, body = signed_in.post("/prompts/steady/activate", {"csrf_token": token, "version": version})
    assert got == status, body
    assert _active(client, "steady") == 1


def test_another_accounts_prompt_is_not_found(signed_in, other_client, client):
    other_client.create_prompt_version("theirs", "secret text")
    other_client.create_prompt_version("theirs", "more", activate=False)
    for path in (
        "/prompts/theirs",
        "/prompts/theirs/versions/1",
        "/prompts/theirs/diff?from=1&to=2",
        "/prompts/theirs/activate?version=2",
    ):
        status, _, body = signed_in.get(path)
        assert status == 404 and "secret text" not in body, path
    status, _, _ = signed_in.post(
        "/prompts/theirs/activate", {"csrf_token": signed_in.csrf("/"), "version": "2"}
    )
    assert status == 404
    assert _active(other_client, "theirs") == 1
    assert "theirs" not in signed_in.get("/")[2]


def test_stored_text_is_escaped_everywhere(signed_in, client):
    script = "<script>alert(1)</script>"
    description = '<img src=x onerror=alert(2)> "quoted" & more'
    client.create_prompt_version("xss", f"{script} {{x}}", description=description)
    client.create_prompt_version("xss", f"{script}\n<b>bold</b> {{x}}", description=description)
    pages = [
        "/",
        "/prompts/xss",
        "/prompts/xss/versions/1",
        "/prompts/xss/diff?from=1&to=2",
        "/prompts/xss/diff?from=1&to=2&layout=unified",
        "/prompts/xss/activate?version=1",
        "/prompts/xss/versions/2?render=1&var.x=%3Cscript%3Ealert(3)%3C/script%3E",
    ]
    for path in pages:
        status, _, body = signed_in.get(path)
        assert status == 200, path
        assert "<script" not in body and "<img" not in body and "<b>" not in body, path
        assert "onerror=alert" not in body or escape("<img src=x onerror=alert(2)>") in body, path
    version_page = signed_in.get("/prompts/xss/versions/1")[2]
    assert escape(script) in version_page and escape(description) in version_page
    rendered = signed_in.get("/prompts/xss/versions/2?render=1&var.x=%3Ci%3E")[2]
    assert escape(f"{script}\n<b>bold</b> <i>") in rendered


def test_every_response_forbids_scripts_and_framing(web):
    for path in ("/signin", "/static/dashboard.css", "/no/such/page"):
        _, headers, _ = web.get(path)
        assert "script-src" not in headers["Content-Security-Policy"]  # default-src 'none' covers scripts
        assert "default-src 'none'" in headers["Content-Security-Policy"], path
        assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"


def test_the_version_page_renders_and_names_a_missing_variable(signed_in, client):
    client.create_prompt_version("mail", "Hello {name}, welcome to {product}")
    status, _, body = signed_in.get("/prompts/mail/versions/1?render=1&var.name=Ada&var.product=pg")
    assert status == 200 and "Hello Ada, welcome to pg" in body
    status, _, body = signed_in.get("/prompts/mail/versions/1?render=1&var.name=Ada")
    assert status == 400 and "missing template variable product" in body


@pytest.mark.parametrize(
    "path, status, words",
    [
        ("/prompts/none", 404, "prompt &#39;none&#39; not found"),
        ("/prompts/BAD", 400, "not a valid name"),
        ("/prompts/pages/versions/0", 400, "positive integer"),
        ("/prompts/pages/versions/x", 400, "positive integer"),
        ("/prompts/pages/versions/7", 404, "has no version 7"),
        ("/prompts/pages/diff?from=9&to=1", 404, "has no version 9"),
        ("/prompts/pages/diff?from=a", 400, "from must be a positive integer"),
        ("/prompts/pages/diff?layout=sideways", 400, "layout must be split or unified"),
        ("/prompts/pages/activate", 400, "give the version"),
        ("/no/such/page", 404, "no such page"),
    ],
)
def test_a_bad_address_is_a_clear_error_page(signed_in, client, path, status, words):
    client.create_prompt_version("pages", "one")
    got, _, body = signed_in.get(path)
    assert got == status and words in body, body


def _table_row(body: str, version: int) -> tuple[dict[str, str], str]:
    """The comparison row of `version`: metric -> data-value, and the row's HTML."""
    table = re.search(r'<table id="comparison".*?</table>', body, re.S)[0]
    row = re.search(rf'<tr data-version="{version}".*?</tr>', table, re.S)[0]
    return dict(re.findall(r'data-metric="(\w+)" data-value="([^"]*)"', row)), row


def _value(cell: str) -> float | None:
    return float(cell) if cell else None


def _optional(message, field: str) -> float | None:
    return getattr(message, field) if message.HasField(field) else None


def _assert_row_is_compares(body: str, m) -> None:
    cells, row = _table_row(body, m.version)
    assert int(cells["total_traces"]) == m.total_traces
    for field in ("success_rate", "avg_cost_usd", "p50_latency_ms", "p95_latency_ms", "p99_latency_ms"):
        assert _value(cells[field]) == _optional(m, field), (m.version, field)
    if m.HasField("success_rate_interval"):
        low, high = re.search(r'data-low="([^"]+)" data-high="([^"]+)"', row).groups()
        assert (float(low), float(high)) == (m.success_rate_interval.low, m.success_rate_interval.high)
    vs = m.vs_baseline if m.HasField("vs_baseline") else None
    p_value = _optional(vs, "success_rate_p_value") if vs else None
    assert _value(cells["success_rate_p_value"]) == p_value, m.version
    assert re.search(r'data-significant="(\w+)"', row)[1] == ("true" if vs and vs.significant else "false")
    assert ('<span class="badge baseline">' in row) == m.is_baseline


def _traffic(client, name: str, end_time=None, versions=(1, 2, 3), n: int = 60) -> None:
    with client.recorder() as rec:
        for i in range(n):
            version = versions[i % len(versions)]
            trace = uuid.uuid4().hex
            rec.record_usage(name, version, trace)
            good = i % (2 + version) != 0  # v3 does best
            rec.record_outcome(
                trace,
                success=good,
                total_cost_usd=0.001 * (i + 1),
                duration_ms=100.0 + 7 * i + 50 * version,
                end_time=end_time,
            )


def test_the_comparison_table_shows_compare_s_numbers(signed_in, client):
    for text in ("one", "two", "three"):
        client.create_prompt_version("numbers", text, activate=text != "three")
    _traffic(client, "numbers", n=300)
    _, _, body = signed_in.get("/prompts/numbers")
    compared = client.compare_prompt_versions("numbers").versions
    assert [m.is_baseline for m in compared] == [False, True, False]  # the active one
    assert any(m.HasField("vs_baseline") and m.vs_baseline.significant for m in compared)
    for m in compared:
        _assert_row_is_compares(body, m)


def test_a_chosen_baseline_and_window_give_compare_s_numbers(signed_in, client):
    for text in ("one", "two", "three"):
        client.create_prompt_version("windowed", text)
    now = datetime.now(UTC)
    _traffic(client, "windowed", end_time=now - timedelta(days=3), versions=(1,), n=40)
    _traffic(client, "windowed", end_time=now - timedelta(hours=1), n=90)
    body = signed_in.get("/prompts/windowed?baseline=1")[2]
    for m in client.compare_prompt_versions("windowed", baseline_version=1).versions:
        _assert_row_is_compares(body, m)
    assert "vs v1" in body and 'value="1" selected' in body
    body = signed_in.get("/prompts/windowed?window=24h&baseline=2")[2]
    recent = client.compare_prompt_versions(
        "windowed", start_time=now - timedelta(hours=24), baseline_version=2
    )
    assert recent.versions[0].total_traces == 30  # the 40 older runs of v1 are outside
    for m in recent.versions:
        _assert_row_is_compares(body, m)
    assert '<option value="24h" selected>' in body
    all_time = signed_in.get("/prompts/windowed?window=all")[2]
    assert _table_row(all_time, 1)[0]["total_traces"] == "70"


def test_the_charts_over_time_draw_get_version_time_series(signed_in, client):
    client.create_prompt_version("timed", "one")
    client.create_prompt_version("timed", "two", activate=False)
    now = datetime.now(UTC)
    for hours in (30, 5, 4, 2):
        _traffic(client, "timed", end_time=now - timedelta(hours=hours), versions=(1, 2), n=6)
    _traffic(client, "timed", end_time=now - timedelta(hours=3), versions=(1,), n=4)
    body = signed_in.get("/prompts/timed?window=24h")[2]
    over_time = re.search(r'<div class="charts" id="over-time">.*?</div>', body, re.S)[0]
    series = client.get_version_time_series(
        "timed", start_time=now - timedelta(hours=24), end_time=now + timedelta(hours=1)
    ).series
    hours = {s.version: len(s.buckets) for s in series}
    assert hours == {1: 4, 2: 3}
    svgs = re.findall(r"<svg.*?</svg>", over_time, re.S)
    assert len(svgs) == 2
    for svg in svgs:
        # v1: 5, 4, 3, 2 hours ago, one line; v2: 5 and 4 hours ago a line, 2 hours ago a dot.
        assert [len(p.split()) for p in re.findall(r'class="line series-0" points="([^"]+)"', svg)] == [4]
        assert [len(p.split()) for p in re.findall(r'class="line series-1" points="([^"]+)"', svg)] == [2]
        assert len(re.findall(r'class="dot series-1"', svg)) == 1
    client.create_prompt_version("silent", "x")
    assert 'id="over-time"' not in signed_in.get("/prompts/silent")[2]


@pytest.mark.parametrize(
    "query, status, words",
    [
        ("window=1h", 400, "window must be one of 24h, 7d, 30d, all"),
        ("baseline=0", 400, "baseline must be a positive integer"),
        ("baseline=x", 400, "baseline must be a positive integer"),
        ("baseline=9", 404, "baseline_version 9"),
    ],
)
def test_a_bad_window_or_baseline_is_a_clear_error(signed_in, client, query, status, words):
    client.create_prompt_version("chosen", "one")
    got, _, body = signed_in.get(f"/prompts/chosen?{query}")
    assert got == status and words in body, body


def test_a_prompt_with_no_traces_shows_dashes(signed_in, client):
    client.create_prompt_version("quiet", "one")
    body = signed_in.get("/prompts/quiet")[2]
    assert _table_row(body, 1)[0] == {
        "total_traces": "0",
        "success_rate": "",
        "avg_cost_usd": "",
        "p50_latency_ms": "",
        "p95_latency_ms": "",
        "p99_latency_ms": "",
        "success_rate_p_value": "",
    }
    assert "no latency yet" in body


def test_the_prompts_list_summarizes_each_prompt(signed_in, client):
    client.create_prompt_version("alpha", "a1")
    client.create_prompt_version("alpha", "a2")
    client.create_prompt_version("alpha", "a3", activate=False)
    client.create_prompt_version("beta", "b1")
    body = signed_in.get("/")[2]
    rows = re.findall(r'<tr data-name="([^"]+)">(.*?)</tr>', body, re.S)
    assert [name for name, _ in rows] == ["alpha", "beta"]
    alpha = re.sub(r"<[^>]+>|\s+", " ", rows[0][1]).split()
    assert alpha[:4] == ["alpha", "v2", "v3", "3"]


def test_a_large_form_is_refused(signed_in, client):
    client.create_prompt_version("big", "one")
    status, _, _ = signed_in.post(
        "/prompts/big/activate", {"csrf_token": "x", "version": "1", "pad": "x" * 70_000}
    )
    assert status == 413


def test_an_unknown_method_is_an_error_page(signed_in):
    status, _, body = signed_in.post("/prompts/x", {"a": "b"})
    assert status == 405 and "<html" in body


def _cells(body: str, version) -> dict[str, str]:
    """The comparison row of `version`: metric -> data-value."""
    row = re.search(rf'<tr data-version="{version}".*?</tr>', body, re.S)[0]
    return dict(re.findall(r'data-metric="(\w+)" data-value="([^"]*)"', row))


def test_the_version_page_shows_what_reproduces_a_run(signed_in, client):
    client.create_prompt_version(
        "repro",
        "Classify {ticket}",
        model_config={
            "provider": "openai",
            "model": "gpt-4o",
            "temperature": 0.2,
            "max_tokens": 300,
            "stop_sequences": ["</a>"],
            "extra": {"response_format": {"type": "<json>"}},
        },
        input_schema={"type": "object", "properties": {"ticket": {"type": "string", "maxLength": 5}}},
        output_schema={"type": "object", "title": "<b>out</b>"},
        source="ci<i>",
    )
    client.edit_prompt_version("repro", [("Classify", "Sort")], source="ui")
    status, _, body = signed_in.get("/prompts/repro/versions/1")
    assert status == 200
    facts = dict(re.findall(r'<dd data-field="(\w+)">(.*?)</dd>', body, re.S))
    assert facts["provider"] == "openai" and facts["model"] == "gpt-4o"
    assert facts["temperature"] == "0.2" and facts["max_tokens"] == "300"
    assert escape("</a>") in facts["stop_sequences"]
    assert re.search(r'id="change">create · source <span class="source">ci&lt;i&gt;</span>', body)
    assert escape('"type": "<json>"') in body and "&lt;b&gt;out&lt;/b&gt;" in body
    assert escape('"maxLength": 5') in body and "<b>out" not in body and "<i>" not in body
    edited = signed_in.get("/prompts/repro/versions/2")[2]
    assert re.search(r'id="change">edit · source <span class="source">ui</span>', edited)
    assert 'id="model-config"' in edited  # an edit keeps its parent's model config
    versions = re.search(r'<table id="versions".*?</table>', signed_in.get("/prompts/repro")[2], re.S)[0]
    rows = dict(re.findall(r'<tr data-version="(\d+)"[^>]*>.*?data-field="change">(\w+)', versions, re.S))
    assert rows == {"2": "edit", "1": "create"}


def test_a_version_without_model_or_schemas_shows_none_of_them(signed_in, client):
    client.create_prompt_version("plain", "hello")
    body = signed_in.get("/prompts/plain/versions/1")[2]
    assert 'id="model-config"' not in body and 'id="input-schema"' not in body
    assert 'id="change">create</dd>' in body


def test_the_diff_page_lists_the_fields_diff_prompt_versions_names(signed_in, client):
    client.create_prompt_version(
        "tuned", "Say {x}", model_config={"model": "m1", "temperature": 0.1}, description="first"
    )
    client.create_prompt_version(
        "tuned",
        "Say {x}",
        model_config={"model": "m1", "temperature": 0.7},
        output_schema={"type": "string"},
        description="<warmer>",
    )
    client.create_prompt_version(
        "tuned",
        "Say {x}",
        model_config={"model": "m1", "temperature": 0.7},
        output_schema={"type": "string"},
        description="<warmer>",
    )
    body = signed_in.get("/prompts/tuned/diff?from=1&to=2")[2]
    rows = re.findall(
        r'<tr data-field="([\w.]+)">.*?<pre class="value">(.*?)</pre>.*?'
        r'<pre class="value">(.*?)</pre>',
        body,
        re.S,
    )
    expected = list(client.diff_prompt_versions("tuned", 1, 2).changed_fields)
    assert [field for field, _, _ in rows] == expected
    assert expected == ["description", "model_config.temperature", "output_schema"]
    assert rows[0][1:] == ("first", "&lt;warmer&gt;")
    assert rows[1][1:] == ("0.1", "0.7")
    assert rows[2][1] == "-" and "&#34;type&#34;: &#34;string&#34;" in rows[2][2]
    same = signed_in.get("/prompts/tuned/diff?from=2&to=3")[2]
    assert list(client.diff_prompt_versions("tuned", 2, 3).changed_fields) == []
    assert "are the same" in same and 'data-field="' not in same


def test_the_prompt_page_shows_labels_split_and_history(signed_in, client, api_key):
    client.create_prompt_version("rel", "one")
    client.create_prompt_version("rel", "two", activate=False)
    client.create_prompt_version("rel", "three", activate=False)
    client.set_prompt_label("rel", "production", 2)
    client.set_prompt_label("rel", "staging", 2)
    client.set_prompt_label("rel", "canary", 3)
    client.set_traffic_split("rel", {2: 9, 3: 1})
    client.activate_prompt_version("rel", 2)
    body = signed_in.get("/prompts/rel")[2]
    versions = re.search(r'<table id="versions".*?</table>', body, re.S)[0]
    on = {
        v: re.findall(
            r'data-label="([^"]+)"', re.search(rf'<tr data-version="{v}".*?</tr>', versions, re.S)[0]
        )
        for v in (1, 2, 3)
    }
    assert on == {v.version: list(v.labels) for v in client.iter_prompt_versions("rel")}
    assert on == {1: [], 2: ["production", "staging"], 3: ["canary"]}
    split = re.search(r'<section class="card" id="split">.*?</section>', body, re.S)[0]
    assert re.findall(r'<tr data-version="(\d+)">.*?data-share="([\d.]+)"', split, re.S) == [
        ("2", "0.9"),
        ("3", "0.1"),
    ]
    history = re.search(r'<section class="card" id="history">.*?</section>', body, re.S)[0]
    rows = [
        re.sub(r"<[^>]+>|\s+", " ", row).split()
        for row in re.findall(r"<tr data-sequence=.*?</tr>", history, re.S)
    ]
    events = list(client.iter_prompt_history("rel"))
    assert len(rows) == len(events) == 9
    key = events[0].created_by
    assert [r[2:] for r in rows[:4]] == [
        ["activated", "v1", "→", "v2", key],
        ["split", "set", "v2", "90%,", "v3", "10%", key],
        ["label", "set", "canary:", "-", "→", "v3", key],
        ["label", "set", "staging:", "-", "→", "v2", key],
    ]
    assert rows[-1][2:] == ["created", "v1", key]
    client.clear_traffic_split("rel")
    client.delete_prompt_label("rel", "canary")
    body = signed_in.get("/prompts/rel")[2]
    assert "No traffic split" in body and 'data-label="canary"' not in body
    history = re.search(r'<section class="card" id="history">.*?</section>', body, re.S)[0]
    assert ["label deleted", "split cleared"] == re.findall(
        r'<td class="nowrap">(label deleted|split cleared)<', history
    )


def test_the_prompt_page_shows_the_newest_history_only(signed_in, client):
    client.create_prompt_version("busy", "v")
    for n in range(25):  # 27 events in all, with the version's creation and activation
        client.set_prompt_label("busy", f"l{n}", 1)
    body = signed_in.get("/prompts/busy")[2]
    assert body.count("<tr data-sequence=") == 20 and "lists every one" in body
    newest = next(client.iter_prompt_history("busy"))
    assert re.search(r'<tr data-sequence="(\d+)"', body)[1] == str(newest.sequence)


AGENT_MESSAGE = "<script>alert(1)</script> first"


def _agent(client, name: str = "helper") -> str:
    """Three versions of an agent (1.0.0 current, v2 staged, v3 staged) linking two prompts."""
    client.create_prompt_version("sys", "You help with {product}.")
    client.create_prompt_version("ask", "Answer: {question}")
    links = [
        agents_pb2.PromptLink(prompt_name="sys", role="<system>", sort_order=0),
        agents_pb2.PromptLink(prompt_name="ask", role="user", sort_order=1, pinned_version=1),
    ]
    config = agents_pb2.AgentConfig(kind=agents_pb2.AGENT_KIND_CHAIN, prompts=links)
    config.model_config.model = "gpt-4o"
    client.create_agent_version(name, config, version="1.0.0", message=AGENT_MESSAGE)
    client.create_agent_version(name, config, message="second", promote=False)
    client.create_agent_version(name, config, message="third", promote=False)
    client.promote_agent_version(name, "1.0.0")
    return name


def _run_agent(client, name: str, version: str, outcomes: list[tuple]) -> None:
    for i, (success, cost, duration) in enumerate(outcomes):
        trace = f"{abs(hash((name, version, i))):032x}"[-32:]
        client.resolve_agent(name, version=version, trace_id=trace)
        client.record_trace_outcome(trace, success=success, total_cost_usd=cost, duration_ms=duration)


def test_the_agents_list_summarizes_each_agent(signed_in, client):
    _agent(client, "helper")
    body = signed_in.get("/agents")[2]
    rows = re.findall(r'<tr data-name="([^"]+)">(.*?)</tr>', body, re.S)
    assert [name for name, _ in rows] == ["helper"]
    assert re.sub(r"<[^>]+>|\s+", " ", rows[0][1]).split()[:3] == ["helper", "1.0.0", "3"]
    assert 'href="/agents"' in signed_in.get("/")[2]  # the nav links it


def test_an_account_without_agents_is_told_how_to_make_one(signed_in):
    assert "No agents yet" in signed_in.get("/agents")[2]


def test_the_agent_page_shows_versions_links_and_compare_s_numbers(signed_in, client):
    name = _agent(client)
    _run_agent(client, name, "1.0.0", [(i % 4 != 0, 0.002 * (i + 1), 900.0 + 13 * i) for i in range(12)])
    _run_agent(client, name, "v2", [(True, 0.003, 1200.0), (False, None, 1500.0)])
    status, _, body = signed_in.get(f"/agents/{name}")
    assert status == 200
    versions = re.search(r'<table id="versions".*?</table>', body, re.S)[0]
    order = re.findall(r'<tr data-version="([^"]+)"( class="is-active")?', versions)
    assert order == [("v3", ""), ("v2", ""), ("1.0.0", ' class="is-active"')]
    assert [v.version for v in client.list_agent_versions(name).agent_versions] == ["v3", "v2", "1.0.0"]
    first = re.search(r'<tr data-version="1.0.0".*?</tr>', versions, re.S)[0]
    assert '<span class="role">&lt;system&gt;</span>' in first and '<span class="role">user</span>' in first
    assert 'href="/prompts/ask/versions/1">ask</a>' in first and 'title="pinned">v1<' in first
    assert 'href="/prompts/sys">sys</a>' in first and "gpt-4o" in first
    assert escape(AGENT_MESSAGE) in first and "<script" not in body
    compared = client.compare_agent_versions(name).versions
    assert [m.version for m in compared] == ["1.0.0", "v2", "v3"]
    for m in compared:
        cells = _cells(body, m.version)
        assert int(cells["total_traces"]) == m.total_traces
        for field in ("success_rate", "avg_cost_usd", "avg_latency_ms", "p95_latency_ms"):
            expected = getattr(m, field) if m.HasField(field) else None
            assert (float(cells[field]) if cells[field] else None) == expected, (m.version, field)
    # Promote forward, roll back to older ones; never the current one.
    comparison = re.search(r'<table id="comparison".*?</table>', body, re.S)[0]
    assert f'href="/agents/{name}/promote?version=v3">Promote<' in comparison
    assert "version=1.0.0" not in comparison
    assert body.count("<svg") == 2


def test_promote_and_roll_back_an_agent_through_the_confirmation(signed_in, client):
    name = _agent(client)
    status, _, page = signed_in.get(f"/agents/{name}/promote?version=v3")
    assert status == 200 and f"Promote {name} to v3?" in page
    assert "Current now: <strong>1.0.0</strong>" in page
    assert client.get_agent_version(name).version == "1.0.0"  # asking changes nothing
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    status, headers, _ = signed_in.post(f"/agents/{name}/promote", {"csrf_token": token, "version": "v3"})
    assert (status, headers["Location"]) == (303, f"/agents/{name}?promoted=v3")
    assert client.get_agent_version(name).version == "v3"
    assert f"v3 is now the current version of {name}" in signed_in.get(f"/agents/{name}?promoted=v3")[2]
    page = signed_in.get(f"/agents/{name}/promote?version=v2")[2]
    assert f"Roll back {name} to v2?" in page
    signed_in.post(f"/agents/{name}/promote", {"csrf_token": token, "version": "v2"})
    assert client.get_agent_version(name).version == "v2"
    assert "nothing to do" in signed_in.get(f"/agents/{name}/promote?version=v2")[2]


@pytest.mark.parametrize(
    "form, status, words",
    [
        ({"version": "v3"}, 403, "reload the page"),
        ({"version": "v3", "csrf_token": "x" * 43}, 403, "reload the page"),
        ({}, 400, "version is required"),
        ({"version": "bad label"}, 400, "not a version label"),
        ({"version": "v9"}, 404, "has no version"),
    ],
)
def test_a_refused_promotion_changes_nothing(signed_in, client, form, status, words):
    name = _agent(client)
    if "csrf_token" not in form and status != 403:
        form = form | {"csrf_token": signed_in.csrf("/agents")}
    got, _, body = signed_in.post(f"/agents/{name}/promote", form)
    assert got == status and words in body, body
    assert client.get_agent_version(name).version == "1.0.0"


@pytest.mark.parametrize(
    "path, status, words",
    [
        ("/agents/none", 404, "agent &#39;none&#39; not found"),
        ("/agents/BAD", 400, "not a valid name"),
        ("/agents/helper/promote", 400, "give the version"),
        ("/agents/helper/promote?version=a%20b", 400, "not a version label"),
        ("/agents/helper/promote?version=v9", 404, "has no version"),
    ],
)
def test_a_bad_agent_address_is_a_clear_error_page(signed_in, client, path, status, words):
    _agent(client)
    got, _, body = signed_in.get(path)
    assert got == status and words in body, body


def test_another_accounts_agent_is_not_found(signed_in, other_client, client):
    _agent(other_client, "theirs")
    for path in ("/agents/theirs", "/agents/theirs/promote?version=v2"):
        status, _, body = signed_in.get(path)
        assert status == 404 and "third" not in body, path
    form = {"csrf_token": signed_in.csrf("/"), "version": "v2"}
    status, _, _ = signed_in.post("/agents/theirs/promote", form)
    assert status == 404
    assert other_client.get_agent_version("theirs").version == "1.0.0"
    assert "theirs" not in signed_in.get("/agents")[2]


# -- units --------------------------------------------------------------------


def test_session_round_trip_and_refusals():
    secret = sessions.derive_secret(b"k" * 32)
    session = sessions.Session.for_key("key_1", 7, now=1000)
    value = sessions.encode(secret, session)
    assert sessions.decode(secret, value, now=1001) == session
    assert sessions.decode(secret, value, now=session.expires) is None  # expired
    assert sessions.decode(sessions.derive_secret(b"j" * 32), value, now=1001) is None  # another secret
    assert sessions.decode(secret, value + "x", now=1001) is None
    assert sessions.decode(secret, None) is None
    assert sessions.csrf_ok(secret, session, sessions.csrf_token(secret, session))
    other = sessions.Session.for_key("key_1", 7, now=1000)
    assert other.sid != session.sid
    assert not sessions.csrf_ok(secret, other, sessions.csrf_token(secret, session))
    assert not sessions.csrf_ok(secret, None, sessions.csrf_token(secret, session))
    assert not sessions.csrf_ok(secret, session, None)


def test_a_signed_but_malformed_payload_is_no_session():
    secret = sessions.derive_secret(b"k" * 32)
    body = base64.urlsafe_b64encode(b'{"s": 1}').rstrip(b"=").decode()
    import hashlib
    import hmac

    signature = base64.urlsafe_b64encode(hmac.new(secret, body.encode(), hashlib.sha256).digest()).rstrip(
        b"="
    )
    assert sessions.decode(secret, body + "." + signature.decode()) is None


@pytest.mark.parametrize(
    "value, expected",
    [(0, 1.0), (0.3, 0.3), (1, 1), (3609, 4000), (5700, 6000), (2.4, 2.5), (100, 100), (121, 150)],
)
def test_nice_maximum(value, expected):
    assert charts.nice_maximum(value) == pytest.approx(expected)


def test_charts_escape_their_labels_and_scale_to_the_axis():
    svg = charts.bar_chart("t<x>", [("<v1>", 0.5, "50%"), ("v2", None, "-")], 1.0, lambda v: f"{v:.0%}")
    assert "<v1>" not in svg and "&lt;v1&gt;" in svg and "t&lt;x&gt;" in svg
    widths = [float(w) for w in re.findall(r'class="bar" x="\d+" y="[\d.]+" width="([\d.]+)"', svg)]
    assert widths == [pytest.approx(charts.PLOT_WIDTH / 2)]
    svg = charts.distribution_chart("lat", [("v1", [("avg", 10.0), ("p95", 40.0)]), ("v2", [])], "ms", str)
    assert "avg 10.0  p95 40.0" in svg and "no latency yet" in svg


def test_field_value_shows_a_changed_field_or_a_dash():
    view = VersionView(
        id="i",
        name="n",
        version=1,
        template_text="t",
        description="",
        is_active=True,
        parent_version=None,
        created_by="k",
        create_time=None,
        variables=[],
        model_config={"temperature": 0.5},
        input_schema={"type": "object"},
        source="ci",
    )
    assert field_value(view, "model_config.temperature") == "0.5"
    assert field_value(view, "model_config.top_p") == "-"
    assert field_value(view, "description") == "-"
    assert field_value(view, "source") == "ci"
    assert field_value(view, "input_schema") == '{\n  "type": "object"\n}'
    assert field_value(view, "output_schema") == "-"


def test_long_chart_labels_widen_the_label_column_and_are_cut():
    assert charts.label_width(["v1", "v10"]) == charts.LABEL_WIDTH
    assert charts.label_width(["1.0.0-rc1"]) > charts.LABEL_WIDTH
    assert charts.label_width(["x" * 64]) == charts.label_width(["x" * charts.MAX_LABEL_CHARS])
    svg = charts.bar_chart("t", [("x" * 64, 0.5, "50%")], 1.0, str)
    assert "x" * 64 not in svg and "x" * (charts.MAX_LABEL_CHARS - 1) + "…" in svg


def test_window_of_names_the_choices_and_refuses_others():
    now = datetime(2026, 11, 30, 12, 30, tzinfo=UTC)
    assert window_of(None) is window_of("") is WINDOWS["all"]
    assert window_of(None).start(now) is None
    assert window_of("24h").start(now) == now - timedelta(hours=24)
    assert window_of("7d").period == timedelta(hours=1) and window_of("30d").period == timedelta(days=1)
    for bad in ("1h", "ALL", "<b>" * 20):
        with pytest.raises(InvalidArgument) as refused:
            window_of(bad)
        assert refused.value.field == "window" and "24h, 7d, 30d, all" in refused.value.message


def test_differences_and_p_values_read_as_written():
    assert (pp(0.052), pp(-0.171), pp(0.0)) == ("+5.2 pp", "-17.1 pp", "+0.0 pp")
    assert (p_value(0.0004), p_value(0.001), p_value(0.6274)) == ("p < 0.001", "p = 0.001", "p = 0.627")


def test_line_chart_breaks_at_gaps_and_scales_to_the_axis():
    start = datetime(2026, 11, 30, 0, 0)
    hour = timedelta(hours=1)
    points = [(start, 1.0), (start + hour, 0.5), (start + 3 * hour, 0.0)]  # no data at 02:00
    svg = charts.line_chart("t", [("v1", points), ("<v2>", [])], start, start + 4 * hour, hour, 1.0, str)
    lines = re.findall(r'<polyline class="line series-0" points="([^"]+)"/>', svg)
    assert len(lines) == 1 and len(lines[0].split()) == 2  # the first two hours joined
    (dot,) = re.findall(r'<circle class="dot series-0" cx="([\d.]+)" cy="([\d.]+)"', svg)
    plot_w = charts.WIDTH - charts.LINE_LEFT - charts.LINE_RIGHT
    assert float(dot[0]) == pytest.approx(charts.LINE_LEFT + plot_w * 3.5 / 4, abs=0.1)
    assert float(dot[1]) == pytest.approx(charts.LINE_HEIGHT - charts.LINE_BOTTOM, abs=0.1)  # 0 at the bottom
    first = lines[0].split()[0].split(",")
    assert float(first[1]) == pytest.approx(charts.LINE_TOP, abs=0.1)  # 1.0 at the top
    assert "&lt;v2&gt;" in svg and "<v2>" not in svg and 'class="key series-1"' in svg


def test_side_by_side_pairs_changed_lines():
    rows = side_by_side("a\nb\nc\n", "a\nB\nc\nd")
    assert [(r.kind, r.left_number, r.left, r.right_number, r.right) for r in rows] == [
        ("equal", 1, "a", 1, "a"),
        ("change", 2, "b", 2, "B"),
        ("equal", 3, "c", 3, "c"),
        ("insert", None, "", 4, "d"),
    ]
    # A final newline that one side lacks is a change, though the lines read alike.
    assert [r.kind for r in side_by_side("a\n", "a")] == ["change"]


def test_the_client_and_the_dashboard_share_one_server(server, api_key):
    with PromptGaugeClient(server.target, api_key) as pg:
        pg.create_prompt_version("shared-one", "x")
    web = Web(server.dashboard_url)
    web.sign_in(api_key)
    assert 'data-name="shared-one"' in web.get("/")[2]


def test_a_multipart_upload_in_place_of_a_field_is_no_value(signed_in, client):
    client.create_prompt_version("upload", "one")
    client.create_prompt_version("upload", "two", activate=False)
    token = signed_in.csrf("/")
    boundary = "xyzzy"
    parts = [("csrf_token", token, None), ("version", "2", "v.txt")]
    body = (
        "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"'
            + (f'; filename="{filename}"' if filename else "")
            + f"\r\n\r\n{value}\r\n"
            for name, value, filename in parts
        )
        + f"--{boundary}--\r\n"
    )
    request = urllib.request.Request(
        signed_in.base + "/prompts/upload/activate",
        data=body.encode(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    try:
        status = signed_in.opener.open(request, timeout=30).status
    except urllib.error.HTTPError as error:
        status = error.code
    assert status == 400
    assert _active(client, "upload") == 1
