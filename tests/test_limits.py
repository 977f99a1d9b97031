"""Every limit is a setting; each one exceeded is a clear INVALID_ARGUMENT or
RESOURCE_EXHAUSTED that changes nothing, never INTERNAL. And a client's
deadline is honoured by the server: a stream past it stops work."""

import logging
import threading
import uuid

import grpc
import pytest
from conftest import create_account, read_sql, serve_process, usage_record

from promptgauge.client import PromptGaugeClient, PromptGaugeError
from promptgauge.client.client import NO_RETRY
from promptgauge.v1 import analytics_pb2

LIMITS = (
    "--max-message-bytes", "65536",
    "--max-template-bytes", "100",
    "--max-records-per-message", "10",
    "--max-page-size", "5",
)


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    """A server with small limits, and a client of one account."""
    url = f"sqlite:///{tmp_path_factory.mktemp('limits') / 'limits.db'}"
    key = create_account(url)
    with serve_process(url, *LIMITS) as (_, target), PromptGaugeClient(target, key, retry=NO_RETRY) as pg:
        pg.create_prompt_version("p", "Answer {q}")
        yield pg, url


def _fails(call, code: grpc.StatusCode) -> PromptGaugeError:
    with pytest.raises(PromptGaugeError) as error:
        call()
    assert error.value.code == code, error.value
    return error.value


def _state(url: str) -> tuple:
    return read_sql(url, "SELECT (SELECT COUNT(*) FROM prompt_version), (SELECT COUNT(*) FROM usage_link)")[0]


def test_a_message_over_max_message_bytes_is_resource_exhausted(limited):
    pg, url = limited
    before = _state(url)
    error = _fails(
        lambda: pg.create_prompt_version("p", "x" * 50, description="d" * 4000 + "y" * 70_000),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    )
    assert "larger than max" in error.message
    assert _state(url) == before


def test_a_template_over_max_template_bytes_is_invalid_argument(limited):
    pg, url = limited
    before = _state(url)
    assert pg.create_prompt_version("t", "x" * 100).version == 1
    error = _fails(lambda: pg.create_prompt_version("t", "x" * 101), grpc.StatusCode.INVALID_ARGUMENT)
    assert (error.reason, error.field) == ("TEMPLATE_TOO_LARGE", "template_text")
    assert "101 bytes; the limit is 100" in error.message
    assert _state(url) == (before[0] + 1, before[1])


def test_page_size_over_max_page_size_is_invalid_argument_and_the_default_fits_it(limited):
    pg, _ = limited
    for version in range(1, 8):
        pg.create_prompt_version("paged", f"Version {version}")
    error = _fails(lambda: pg.list_prompt_versions("paged", page_size=6), grpc.StatusCode.INVALID_ARGUMENT)
    assert "between 1 and 5" in error.message
    page = pg.list_prompt_versions("paged")
    assert len(page.prompt_versions) == 5 and page.next_page_token


def test_a_stream_message_over_max_records_is_invalid_argument_and_earlier_messages_stay(limited):
    pg, url = limited
    before = _state(url)
    ok = [usage_record("p", 1, str(uuid.uuid4())) for _ in range(10)]
    too_many = [usage_record("p", 1, str(uuid.uuid4())) for _ in range(11)]
    error = _fails(lambda: pg.stream_usage([ok, too_many]), grpc.StatusCode.INVALID_ARGUMENT)
    assert "has 11 records; the limit is 10" in error.message
    assert _state(url) == (before[0], before[1] + 10)


class _RpcLog(logging.Handler):
    """Waits for the server's log line of one method's RPC."""

    def __init__(self, method: str):
        super().__init__()
        self.method, self.done, self.fields = method, threading.Event(), {}

    def emit(self, record):
        fields = getattr(record, "fields", {})
        if fields.get("method", "").endswith(self.method):
            self.fields = fields
            self.done.set()


def test_a_stream_past_its_deadline_stops_work_on_the_server(server, client):
    client.create_prompt_version("slow", "Answer {q}")
    watcher = _RpcLog("/StreamUsage")
    logging.getLogger("promptgauge.rpc").addHandler(watcher)
    logging.getLogger("promptgauge.rpc").setLevel(logging.INFO)
    never = threading.Event()
    sent = []

    def stored() -> int:
        return client.compare_prompt_versions("slow").versions[0].total_traces

    def stream():
        for _ in range(3):
            batch = [usage_record("slow", 1, str(uuid.uuid4())) for _ in range(100)]
            sent.append(batch)
            yield batch
        # The server stores what it has read while the stream is open.
        tick = threading.Event()
        while stored() < 300 and not never.is_set():
            tick.wait(0.02)
        never.wait(30)  # a client that stalls; its deadline passes meanwhile
        yield [usage_record("slow", 1, str(uuid.uuid4()))]

    try:
        _fails(lambda: client.stream_usage(stream(), timeout=3.0), grpc.StatusCode.DEADLINE_EXCEEDED)
        # The server's side of the call ended too, at the deadline rather than
        # when the stalled client would have sent more, 30 s later.
        assert watcher.done.wait(10)
        assert watcher.fields["code"] == "DEADLINE_EXCEEDED"
        assert watcher.fields["duration_ms"] < 3000 + 2000
    finally:
        never.set()
        logging.getLogger("promptgauge.rpc").removeHandler(watcher)
    # The three whole messages it had read, and nothing after them.
    assert stored() == 300


def test_responses_never_outgrow_the_message_limit_however_large_the_templates(server, client):
    """70 versions of a 64 KiB template are 4.5 MB, over the default 4 MiB
    message limit: pages end early by bytes, with a token for the rest, and a
    comparison leaves the templates out and says so."""
    name = f"big-{uuid.uuid4().hex[:8]}"
    text = "{q}" + "x" * (server.settings.max_template_bytes - 3)
    for _ in range(70):
        client.create_prompt_version(name, text)
    limit = server.settings.max_message_bytes

    pages = []
    token = ""
    while True:
        page = client.list_prompt_versions(name, page_size=200, page_token=token)
        assert page.ByteSize() <= limit
        pages.append([v.version for v in page.prompt_versions])
        token = page.next_page_token
        if not token:
            break
    assert len(pages) == 2 and sum(pages, []) == list(range(70, 0, -1))
    listed = [v.version for v in client.iter_prompts(page_size=200) if v.name == name]
    assert listed == list(range(70, 0, -1))

    full = client.compare_prompt_versions(name)
    assert full.templates_omitted and full.ByteSize() <= limit
    assert [v.total_traces for v in full.versions] == [0] * 70
    assert all(v.template_text == "" for v in full.versions)
    basic = client.compare_prompt_versions(name, view=analytics_pb2.COMPARISON_VIEW_BASIC)
    assert not basic.templates_omitted and all(v.template_text == "" for v in basic.versions)


def test_a_comparison_that_fits_carries_templates_unless_basic_is_asked(client):
    client.create_prompt_version("viewed", "Answer {q}")
    (full,) = client.compare_prompt_versions("viewed").versions
    assert full.template_text == "Answer {q}"
    response = client.compare_prompt_versions("viewed", view=analytics_pb2.COMPARISON_VIEW_BASIC)
    assert response.versions[0].template_text == "" and not response.templates_omitted
    _fails(lambda: client.compare_prompt_versions("viewed", view=7), grpc.StatusCode.INVALID_ARGUMENT)
