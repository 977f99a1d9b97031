"""The dashboard in a real headless browser: Debian's chromium driven by
Playwright, against the session's server on each backend. Sign in, read a
prompt's comparison and check it against the gRPC Compare, promote and roll
back through the confirmation, stored scripts shown as text, sign out, CSRF.
Screenshots of every page at 1280 px and at a phone's width go to
test-artifacts/screenshots/ (or PROMPTGAUGE_SCREENSHOT_DIR).

Without chromium or Playwright these tests skip, saying why; CI sets
PROMPTGAUGE_REQUIRE_BROWSER=1 and installs chromium, so there they fail
instead."""

import base64
import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import make_account

from promptgauge.client import PromptGaugeClient
from promptgauge.v1 import agents_pb2

CHROMIUM = os.environ.get("PROMPTGAUGE_CHROMIUM", "/usr/bin/chromium")
BROWSER_REQUIRED = os.environ.get("PROMPTGAUGE_REQUIRE_BROWSER") == "1"
SCREENSHOTS = Path(
    os.environ.get("PROMPTGAUGE_SCREENSHOT_DIR")
    or Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
)
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
# The flags for a browser in a container, with nothing fetched from outside.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _why_no_browser() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed: pip install -e '.[dev]'"
    if not os.access(CHROMIUM, os.X_OK):
        return f"no chromium at {CHROMIUM}: apt-get install chromium (or set PROMPTGAUGE_CHROMIUM)"
    return None


# Module scope: Playwright's sync API holds an event loop in this thread while it
# runs, which would stop later tests from calling asyncio.run().
@pytest.fixture(scope="module")
def browser():
    reason = _why_no_browser()
    if reason:
        if BROWSER_REQUIRED:
            pytest.fail(f"PROMPTGAUGE_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Tab:
    """A browser tab on the dashboard, recording every dialog that opens."""

    def __init__(self, browser, base: str, backend: str, viewport: str = "desktop"):
        self.context = browser.new_context(viewport=VIEWPORTS[viewport])
        self.page = self.context.new_page()
        self.base = base
        self.backend = backend
        self.viewport = viewport
        self.dialogs: list[str] = []

        def dismiss(dialog):
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", dismiss)

    def go(self, path: str):
        response = self.page.goto(self.base + path)
        assert response is not None
        return response

    def sign_in(self, api_key: str) -> None:
        self.go("/")
        assert self.page.url.endswith("/signin")
        self.page.fill("input[name=api_key]", api_key)
        self.page.click("button[type=submit]")
        self.page.wait_for_url(self.base + "/")

    def shot(self, name: str) -> Path:
        """A full-page screenshot; also checks that the page itself never
        scrolls sideways (wide tables scroll inside their cards)."""
        width = self.page.evaluate("document.documentElement.scrollWidth")
        assert width <= VIEWPORTS[self.viewport]["width"], f"{name} is {width}px wide"
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}-{self.viewport}-{self.backend}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser, server, backend):
    opened = Tab(browser, server.dashboard_url, backend)
    yield opened
    opened.close()


def _record(client: PromptGaugeClient, name: str, version: int, outcomes: list[tuple]) -> None:
    """Runs that ended over the last five days (never on a whole hour from
    now, so that a window's edge falls between them)."""
    now = datetime.now(UTC)
    with client.recorder() as rec:
        for i, (success, cost, duration) in enumerate(outcomes):
            trace = str(uuid.uuid4())
            rec.record_usage(name, version, trace)
            ended = now - timedelta(hours=(i * 7) % 120 + 0.5)
            rec.record_outcome(
                trace, success=success, total_cost_usd=cost, duration_ms=duration, end_time=ended
            )


def _classifier(client: PromptGaugeClient, name: str = "support-classifier") -> str:
    """Three versions (v2 active, v3 staged) and their traces."""
    client.create_prompt_version(
        name,
        "You are a support classifier. Categorize the following ticket: {ticket_text}",
        description="first: direct classification",
    )
    client.create_prompt_version(
        name,
        "You are an expert support classifier.\nThink step by step before categorizing.\n"
        "Ticket: {ticket_text}\nAnswer with one of: billing, bug, account, other.",
        description="chain of thought and a closed label set",
        parent_version=1,
    )
    client.create_prompt_version(
        name,
        "You are an expert support classifier.\nThink step by step before categorizing.\n"
        "Ticket: {ticket_text}\nCustomer tier: {tier}\nAnswer with one of: billing, bug, account, other.",
        description="use the customer tier",
        parent_version=2,
        activate=False,
        model_config={"provider": "openai", "model": "gpt-4o-mini", "temperature": 0.2, "max_tokens": 16},
        input_schema={
            "type": "object",
            "required": ["ticket_text"],
            "properties": {"ticket_text": {"type": "string"}, "tier": {"enum": ["free", "gold"]}},
        },
        source="ci",
    )
    _record(client, name, 1, [(i % 10 < 7, 0.0031, 1500.0 + 37 * i) for i in range(120)])
    _record(client, name, 2, [(i % 10 < 9, 0.0048, 1800.0 + 41 * i) for i in range(100)])
    _record(client, name, 3, [(i % 10 < 9, 0.0052, 1900.0 + 29 * i) for i in range(20)])
    return name


def test_sign_in_and_the_comparison_table_shows_compares_numbers(tab, client, api_key):
    name = _classifier(client)
    tab.sign_in(api_key)
    tab.page.click(f"#prompts a:text('{name}')")
    tab.page.wait_for_url(f"{tab.base}/prompts/{name}")
    compared = client.compare_prompt_versions(name).versions
    assert len(compared) == 3
    _assert_table_is(tab, compared)
    assert tab.page.locator("#comparison .badge.baseline").count() == 1
    assert tab.page.locator("svg.chart").count() == 5  # three comparisons, two over time
    # The last 24 hours: choose it, and the table is Compare's over that window.
    tab.page.select_option("#window-form select[name=window]", "24h")
    tab.page.select_option("#window-form select[name=baseline]", "1")
    tab.page.click("#window-form button")
    tab.page.wait_for_url(f"{tab.base}/prompts/{name}?window=24h&baseline=1")
    day_ago = datetime.now(UTC) - timedelta(hours=24)
    recent = client.compare_prompt_versions(name, start_time=day_ago, baseline_version=1).versions
    assert 0 < recent[0].total_traces < compared[0].total_traces
    _assert_table_is(tab, recent)
    assert tab.dialogs == []


def _assert_table_is(tab: "Tab", compared) -> None:
    """The comparison table on the page shows these VersionMetrics."""
    formats = {
        "avg_cost_usd": ".4f",
        "p50_latency_ms": ",.0f",
        "p95_latency_ms": ",.0f",
        "p99_latency_ms": ",.0f",
    }
    for m in compared:
        row = tab.page.locator(f'#comparison tr[data-version="{m.version}"]')
        traces = row.locator('td[data-metric="total_traces"]')
        assert traces.inner_text() == f"{m.total_traces:,}"
        for field, fmt in formats.items():
            cell = row.locator(f'td[data-metric="{field}"]')
            assert cell.inner_text() == format(getattr(m, field), fmt), field
            assert float(cell.get_attribute("data-value")) == getattr(m, field), field
        success = row.locator('td[data-metric="success_rate"]')
        low, high = m.success_rate_interval.low, m.success_rate_interval.high
        assert success.inner_text().split() == [f"{m.success_rate:.1%}", f"{low:.1%}–{high:.1%}"]
        vs = row.locator('td[data-metric="success_rate_p_value"]')
        assert vs.get_attribute("data-significant") == str(m.vs_baseline.significant).lower()
        if m.HasField("vs_baseline"):
            assert vs.inner_text().split()[0] == f"{m.vs_baseline.success_rate_diff * 100:+.1f}"
        else:
            assert vs.inner_text() == "baseline"


def test_promote_and_roll_back_through_the_page(tab, client, api_key):
    name = _classifier(client, "promoted")
    tab.sign_in(api_key)
    tab.go(f"/prompts/{name}")
    tab.page.click('#comparison tr[data-version="3"] a:text("Promote")')
    tab.page.wait_for_url(f"{tab.base}/prompts/{name}/activate?version=3")
    assert tab.page.locator("h1").inner_text() == f"Promote {name} to v3?"
    assert client.get_prompt_version(name).version == 2  # nothing happens before confirming
    tab.page.click("#confirm")
    tab.page.wait_for_url(f"{tab.base}/prompts/{name}?activated=3")
    assert "v3 is now the active version" in tab.page.inner_text("main")
    active = client.get_prompt_version(name)
    assert (active.version, active.is_active) == (3, True)

    tab.page.click('#comparison tr[data-version="1"] a:text("Roll back")')
    tab.page.wait_for_url(f"{tab.base}/prompts/{name}/activate?version=1")
    assert tab.page.locator("h1").inner_text() == f"Roll back {name} to v1?"
    tab.page.click("a:text('Cancel')")
    tab.page.wait_for_url(f"{tab.base}/prompts/{name}")
    assert client.get_prompt_version(name).version == 3
    tab.page.click('#comparison tr[data-version="1"] a:text("Roll back")')
    tab.page.wait_for_url(f"{tab.base}/prompts/{name}/activate?version=1")
    tab.page.click("#confirm")
    tab.page.wait_for_url(f"{tab.base}/prompts/{name}?activated=1")
    assert client.get_prompt_version(name).version == 1


def test_a_stored_script_shows_as_text_and_never_runs(tab, client, api_key):
    script = "<script>alert(1)</script>"
    description = "<img src=x onerror=alert(2)>"
    client.create_prompt_version("xss", f"{script} {{x}}", description=description)
    client.create_prompt_version(
        "xss", f"{script}\n<b onmouseover=alert(3)>hi</b> {{x}}", description=description
    )
    tab.sign_in(api_key)
    for path in (
        "/",
        "/prompts/xss",
        "/prompts/xss/versions/1",
        "/prompts/xss/diff?from=1&to=2",
        "/prompts/xss/diff?from=1&to=2&layout=unified",
        "/prompts/xss/activate?version=1",
        "/prompts/xss/versions/2?render=1&var.x=%3Cscript%3Ealert(4)%3C%2Fscript%3E",
    ):
        tab.go(path)
        assert tab.page.locator("script").count() == 0, path
        assert tab.page.locator("main img, main b").count() == 0, path
    tab.go("/prompts/xss/versions/1")
    assert tab.page.inner_text("#template") == f"{script} {{x}}"
    assert tab.page.inner_text("#description") == description
    tab.go("/prompts/xss/versions/2?render=1&var.x=%3Cscript%3Ealert(4)%3C%2Fscript%3E")
    assert (
        tab.page.inner_text("#rendered")
        == f"{script}\n<b onmouseover=alert(3)>hi</b> <script>alert(4)</script>"
    )
    tab.page.hover("#rendered")
    assert tab.dialogs == []


def _support_agent(client: PromptGaugeClient, classifier: str, name: str = "support-bot") -> str:
    """An agent over the classifier and a reply prompt: 1.0.0 current, 1.1.0
    staged, with runs linked to both."""
    client.create_prompt_version("support-reply", "Reply to the customer about {ticket_text}.")
    links = [
        agents_pb2.PromptLink(prompt_name=classifier, role="classify", sort_order=0, pinned_version=2),
        agents_pb2.PromptLink(prompt_name="support-reply", role="reply", sort_order=1),
    ]
    config = agents_pb2.AgentConfig(kind=agents_pb2.AGENT_KIND_CHAIN, prompts=links)
    config.model_config.model = "gpt-4o-mini"
    client.create_agent_version(name, config, version="1.0.0", message="classify, then reply")
    config.prompts[0].pinned_version = 3
    client.create_agent_version(name, config, version="1.1.0", message="use the customer tier", promote=False)
    for version, outcomes in (
        ("1.0.0", [(i % 10 < 8, 0.009, 2400.0 + 31 * i) for i in range(40)]),
        ("1.1.0", [(i % 10 < 9, 0.011, 2600.0 + 23 * i) for i in range(20)]),
    ):
        for success, cost, duration in outcomes:
            trace = uuid.uuid4().hex
            client.resolve_agent(name, version=version, trace_id=trace)
            client.record_trace_outcome(trace, success=success, total_cost_usd=cost, duration_ms=duration)
    return name


def test_promote_an_agent_through_the_page(tab, client, api_key):
    agent = _support_agent(client, _classifier(client, "agent-classifier"))
    tab.sign_in(api_key)
    tab.page.click("nav a:text('Agents')")
    tab.page.wait_for_url(f"{tab.base}/agents")
    tab.page.click(f"#agents a:text('{agent}')")
    tab.page.wait_for_url(f"{tab.base}/agents/{agent}")
    for m in client.compare_agent_versions(agent).versions:
        row = tab.page.locator(f'#comparison tr[data-version="{m.version}"]')
        assert row.locator('td[data-metric="total_traces"]').inner_text() == f"{m.total_traces:,}"
        assert row.locator('td[data-metric="success_rate"]').inner_text() == format(m.success_rate, ".1%")
    tab.page.click('#comparison tr[data-version="1.1.0"] a:text("Promote")')
    tab.page.wait_for_url(f"{tab.base}/agents/{agent}/promote?version=1.1.0")
    assert client.get_agent_version(agent).version == "1.0.0"  # nothing happens before confirming
    tab.page.click("#confirm")
    tab.page.wait_for_url(f"{tab.base}/agents/{agent}?promoted=1.1.0")
    assert "1.1.0 is now the current version" in tab.page.inner_text("main")
    current = client.get_agent_version(agent)
    assert (current.version, current.is_current) == ("1.1.0", True)
    tab.page.click('#comparison tr[data-version="1.0.0"] a:text("Roll back")')
    tab.page.click("#confirm")
    tab.page.wait_for_url(f"{tab.base}/agents/{agent}?promoted=1.0.0")
    assert client.get_agent_version(agent).version == "1.0.0"
    assert tab.dialogs == []


def test_sign_out_and_the_pages_are_closed(tab, client, api_key):
    client.create_prompt_version("closed", "x")
    tab.sign_in(api_key)
    tab.page.click("button:text('Sign out')")
    tab.page.wait_for_url(f"{tab.base}/signin")
    for path in ("/", "/prompts/closed"):
        tab.go(path)
        assert "/signin" in tab.page.url
        assert tab.page.locator("input[name=api_key]").count() == 1
    # What the browser keeps now is an anonymous session (the sign-in form's), naming no key.
    for cookie in tab.context.cookies():
        body = cookie["value"].split(".")[0]
        assert json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["k"] == ""


def test_a_post_without_the_pages_token_is_refused(tab, browser, server, backend, client, api_key):
    client.create_prompt_version("guarded", "one")
    client.create_prompt_version("guarded", "two", activate=False)
    tab.sign_in(api_key)
    url = f"{tab.base}/prompts/guarded/activate"
    # The browser's own cookies go along, as a forged form's would on a site that allowed them.
    refused = tab.context.request.post(url, form={"version": "2"})
    assert refused.status == 403 and "reload the page" in refused.text()
    other = Tab(browser, server.dashboard_url, backend)
    try:
        other.sign_in(api_key)
        other.go("/prompts/guarded/activate?version=2")
        foreign = other.page.get_attribute("input[name=csrf_token]", "value")
    finally:
        other.close()
    refused = tab.context.request.post(url, form={"version": "2", "csrf_token": foreign})
    assert refused.status == 403
    assert client.get_prompt_version("guarded").version == 1
    wrong_key = tab.context.request.post(f"{tab.base}/signin", form={"api_key": make_account()})
    assert wrong_key.status == 403


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_every_page_at_desktop_and_phone_width(browser, server, backend, viewport):
    api_key = make_account("acme")  # a name fit for the screenshots in docs/
    with PromptGaugeClient(server.target, api_key) as client:
        name = _classifier(client)
        client.set_prompt_label(name, "production", 2)
        client.set_prompt_label(name, "staging", 3)
        client.set_traffic_split(name, {2: 90, 3: 10})
        client.create_prompt_version(
            "welcome-email", "Hello {name}, welcome to {product}!", description="onboarding"
        )
        agent = _support_agent(client, name)
    tab = Tab(browser, server.dashboard_url, backend, viewport)
    try:
        tab.go("/signin")
        tab.shot("signin")
        tab.sign_in(api_key)
        tab.shot("prompts")
        tab.go(f"/prompts/{name}")
        tab.shot("prompt")
        tab.go(f"/prompts/{name}/versions/3?render=1&var.ticket_text=My+invoice+is+wrong&var.tier=gold")
        assert "Customer tier: gold" in tab.page.inner_text("#rendered")
        tab.shot("version")
        tab.go(f"/prompts/{name}/diff?from=1&to=3")
        tab.shot("diff")
        tab.go(f"/prompts/{name}/diff?from=2&to=3&layout=unified")
        assert tab.page.locator("#changed-fields tr[data-field]").count() > 0
        tab.shot("diff-unified")
        tab.go(f"/prompts/{name}/activate?version=3")
        tab.shot("confirm")
        tab.go("/agents")
        tab.shot("agents")
        tab.go(f"/agents/{agent}")
        tab.shot("agent")
        tab.go(f"/agents/{agent}/promote?version=1.1.0")
        tab.shot("agent-confirm")
        tab.go("/prompts/no-such-prompt")
        tab.shot("not-found")
        assert tab.dialogs == []
    finally:
        tab.close()
