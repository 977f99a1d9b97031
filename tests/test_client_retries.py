"""The client's retries and its one deadline, through real sockets: a port
that refuses connections, and a stand-in server that answers as each test
tells it (so nothing here depends on the real server's internals). The
service config that declares the policy is checked against its file."""

import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent import futures
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import SimpleNamespace

import grpc
import pytest

from promptgauge.client import NO_RETRY, PromptGaugeClient, PromptGaugeError, RetryPolicy, retries
from promptgauge.client import client as client_module
from promptgauge.client.client import DEFAULT_TIMEOUT_SECONDS, _unsent_reason
from promptgauge.v1 import agents_pb2, analytics_pb2, analytics_pb2_grpc, prompts_pb2, prompts_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
SERVICE_CONFIG_FILE = ROOT / "client" / "service_config.json"
NODE_EXAMPLE = ROOT / "examples" / "node"
UNAVAILABLE = (grpc.StatusCode.UNAVAILABLE, "the database is unavailable (stand-in); try again")


@pytest.fixture
def port():
    """A port that refuses connections: bound, never listening. SO_REUSEPORT
    lets a stand-in server listen on it as well, and again after a stop."""
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]


class StandIn(prompts_pb2_grpc.PromptServiceServicer, analytics_pb2_grpc.AnalyticsServiceServicer):
    """Counts the calls that reach it; a method fails with the statuses queued
    in `failures[method]` before it succeeds, and one in `hang` succeeds only
    once `release` is set."""

    def __init__(self):
        self.calls: Counter[str] = Counter()
        self.time_left: list[float] = []  # seconds of its deadline left to each call on arrival
        self.records: list[int] = []  # records received by each StreamUsage call
        self.failures: defaultdict[str, list[tuple[grpc.StatusCode, str]]] = defaultdict(list)
        self.hang: set[str] = set()
        self.release = threading.Event()

    def _answer(self, method: str, context) -> None:
        self.calls[method] += 1
        self.time_left.append(context.time_remaining())
        if self.failures[method]:
            context.abort(*self.failures[method].pop(0))
        if method in self.hang:
            self.release.wait(60)

    def CreatePromptVersion(self, request, context):
        self._answer("CreatePromptVersion", context)
        version = prompts_pb2.PromptVersion(name=request.name, version=1, template_text=request.template_text)
        return prompts_pb2.CreatePromptVersionResponse(prompt_version=version)

    def ComparePromptVersions(self, request, context):
        self._answer("ComparePromptVersions", context)
        return analytics_pb2.ComparePromptVersionsResponse(name=request.name)

    def StreamUsage(self, request_iterator, context):
        received = sum(len(message.records) for message in request_iterator)
        self.records.append(received)
        self._answer("StreamUsage", context)
        summary = analytics_pb2.IngestSummary(received=received, recorded=received)
        return analytics_pb2.StreamUsageResponse(summary=summary)


@contextmanager
def stand_in(port: int, services: StandIn):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    prompts_pb2_grpc.add_PromptServiceServicer_to_server(services, server)
    analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server(services, server)
    assert server.add_insecure_port(f"127.0.0.1:{port}") == port
    server.start()
    try:
        yield server
    finally:
        services.release.set()
        server.stop(None).wait()


@pytest.fixture
def services():
    return StandIn()


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The backoffs the client waits, recorded instead of slept."""
    waited: list[float] = []
    monkeypatch.setattr(client_module, "_sleep", waited.append)
    return waited


def _usage(n: int) -> list[list[analytics_pb2.UsageRecord]]:
    record = analytics_pb2.UsageRecord(prompt_name="p", prompt_version=1, trace_id="0" * 31 + "1")
    return [[record] * n]


# -- a target that refuses connections ---------------------------------------


def test_a_closed_port_is_unavailable_naming_the_target_within_one_deadline(port):
    target = f"127.0.0.1:{port}"
    with PromptGaugeClient(target, "pgk_x", timeout=2) as pg:
        for call in (
            lambda: pg.compare_prompt_versions("p"),
            lambda: pg.stream_usage(_usage(3), retry=True),
        ):
            started = time.monotonic()
            with pytest.raises(PromptGaugeError) as error:
                call()
            # One budget for the whole call: each retry used to get a fresh one (5 x 2 s).
            assert time.monotonic() - started < 2 + 1
            assert error.value.code == grpc.StatusCode.UNAVAILABLE
            assert error.value.message == f"cannot reach {target}: connection refused"
            assert error.value.sent is False


def test_the_compare_command_reports_a_closed_port_in_one_line_within_the_default_deadline(port):
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "promptgauge.server.cli", "compare", "--target", f"127.0.0.1:{port}",
         "--api-key", "pgk_x", "some-prompt"],
        capture_output=True, text=True, timeout=120,
    )
    # The deadline plus the interpreter's start, not the five full deadlines it took.
    assert time.monotonic() - started < DEFAULT_TIMEOUT_SECONDS + 5
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("promptgauge: ") and f"cannot reach 127.0.0.1:{port}: connection refused" in line


def test_create_prompt_version_fails_at_once_without_a_connection(port, monkeypatch):
    waited = []
    monkeypatch.setattr(client_module, "_wait_for_connection", lambda *args: waited.append(args))
    with PromptGaugeClient(f"127.0.0.1:{port}", "pgk_x") as pg, pytest.raises(PromptGaugeError) as error:
        pg.create_prompt_version("p", "x")
    assert error.value.code == grpc.StatusCode.UNAVAILABLE
    assert "connection refused" in error.value.message
    assert waited == []


# -- a server that comes back ------------------------------------------------


def test_a_server_stopped_and_back_while_the_client_waits_is_reached(port, services, monkeypatch):
    wait_for_connection = client_module._wait_for_connection
    waited = []
    with ExitStack() as servers, PromptGaugeClient(f"127.0.0.1:{port}", "pgk_x", timeout=60) as pg:
        with stand_in(port, services):
            assert pg.compare_prompt_versions("p").name == "p"

        def server_back_while_waiting(channel, timeout):
            waited.append(timeout)
            if len(waited) == 1:
                servers.enter_context(stand_in(port, services))
            return wait_for_connection(channel, timeout)

        monkeypatch.setattr(client_module, "_wait_for_connection", server_back_while_waiting)
        assert pg.compare_prompt_versions("p").name == "p"
        assert pg.stream_usage(_usage(3), retry=True).received == 3
    assert len(waited) >= 1
    # The try that found no server never left the client: the server saw each call once.
    assert services.calls == {"ComparePromptVersions": 2, "StreamUsage": 1}


# -- a server that answers UNAVAILABLE --------------------------------------


def test_unavailable_from_the_server_is_retried_with_backoff(port, services, waits):
    services.failures["ComparePromptVersions"] = [UNAVAILABLE, UNAVAILABLE]
    with stand_in(port, services), PromptGaugeClient(f"127.0.0.1:{port}", "pgk_x") as pg:
        assert pg.compare_prompt_versions("p").name == "p"
    assert services.calls["ComparePromptVersions"] == 3
    # Retry n waits up to min(0.2 s * 2**(n-1), 5 s), as the service config says.
    assert len(waits) == 2 and 0 <= waits[0] <= 0.2 and 0 <= waits[1] <= 0.4


def test_retries_stop_after_the_policys_attempts_and_keep_the_servers_message(port, services, waits):
    services.failures["ComparePromptVersions"] = [UNAVAILABLE] * 10
    with stand_in(port, services), PromptGaugeClient(f"127.0.0.1:{port}", "pgk_x") as pg:
        with pytest.raises(PromptGaugeError) as error:
            pg.compare_prompt_versions("p")
    assert (error.value.code, error.value.message) == UNAVAILABLE
    assert error.value.sent is True
    # Five tries, retried by this client alone: gRPC's own retries would multiply them.
    assert services.calls["ComparePromptVersions"] == 5
    assert len(waits) == 4


def test_create_prompt_version_is_never_retried(port, services, waits):
    services.failures["CreatePromptVersion"] = [UNAVAILABLE] * 10
    with stand_in(port, services), PromptGaugeClient(f"127.0.0.1:{port}", "pgk_x") as pg:
        with pytest.raises(PromptGaugeError) as error:
            pg.create_prompt_version("p", "x")
    assert (error.value.code, error.value.message) == UNAVAILABLE
    assert services.calls["CreatePromptVersion"] == 1
    assert waits == []


def test_other_codes_are_not_retried(port, services, waits):
    services.failures["ComparePromptVersions"] = [(grpc.StatusCode.NOT_FOUND, "no such prompt")]
    with stand_in(port, services), PromptGaugeClient(f"127.0.0.1:{port}", "pgk_x") as pg:
        with pytest.raises(PromptGaugeError) as error:
            pg.compare_prompt_versions("p")
    assert error.value.code == grpc.StatusCode.NOT_FOUND
    assert services.calls["ComparePromptVersions"] == 1


# -- one deadline ---------------------------------------------------------------


def test_a_backoff_that_would_outlast_the_deadline_is_not_waited(port, services, waits, monkeypatch):
    monkeypatch.setattr(retries.random, "uniform", lambda low, high: high)
    services.failures["ComparePromptVersions"] = [UNAVAILABLE] * 10
    policy = RetryPolicy(initial_backoff_seconds=30, max_backoff_seconds=30)
    with stand_in(port, services), PromptGaugeClient(f"127.0.0.1:{port}", "k", timeout=5, retry=policy) as pg:
        with pytest.raises(PromptGaugeError) as error:
            pg.compare_prompt_versions("p")
    # The server's failure, at once, rather than DEADLINE_EXCEEDED after a pointless wait.
    assert (error.value.code, error.value.message) == UNAVAILABLE
    assert (services.calls["ComparePromptVersions"], waits) == (1, [])


def test_a_retry_gets_what_is_left_of_the_one_deadline(port, services, monkeypatch):
    # A clock the backoff moves forward, instead of waiting.
    skipped = [0.0]
    clock = SimpleNamespace(monotonic=lambda: time.monotonic() + skipped[0])
    monkeypatch.setattr(client_module, "time", clock)
    monkeypatch.setattr(client_module, "_sleep", lambda seconds: skipped.__setitem__(0, skipped[0] + seconds))
    monkeypatch.setattr(retries.random, "uniform", lambda low, high: high)
    services.failures["ComparePromptVersions"] = [UNAVAILABLE]
    policy = RetryPolicy(initial_backoff_seconds=1.5, max_backoff_seconds=1.5)
    with stand_in(port, services), PromptGaugeClient(f"127.0.0.1:{port}", "k", timeout=2, retry=policy) as pg:
        assert pg.compare_prompt_versions("p").name == "p"
    first, retry = services.time_left
    # 2 s for the call: the retry after a 1.5 s backoff has the 0.5 s left, not a fresh 2 s.
    # (The grpc-timeout header carries a timeout of 1-10 s rounded up to 10 ms,
    # and 0.1-1 s to 1 ms: the server may see that much more.)
    assert 1.5 < first <= 2.01
    assert 0 < retry <= 0.501


def test_deadline_exceeded_ends_the_call(port, services, waits):
    services.failures["ComparePromptVersions"] = [UNAVAILABLE]
    services.hang.add("ComparePromptVersions")
    target = f"127.0.0.1:{port}"
    with stand_in(port, services), PromptGaugeClient(target, "pgk_x", timeout=1) as pg:
        started = time.monotonic()
        with pytest.raises(PromptGaugeError) as error:
            pg.compare_prompt_versions("p")
        assert time.monotonic() - started < 1 + 0.5
    assert error.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert error.value.message == f"no answer from {target} within 1 s"
    # The budget is spent: no try after the one that ran out of it.
    assert services.calls["ComparePromptVersions"] == 2
    assert len(waits) == 1


# -- streams ------------------------------------------------------------------


def test_a_stream_is_sent_whole_again_only_with_retry(port, services, waits):
    with stand_in(port, services), PromptGaugeClient(f"127.0.0.1:{port}", "pgk_x") as pg:
        services.failures["StreamUsage"] = [UNAVAILABLE]
        assert pg.stream_usage(_usage(4), retry=True).received == 4
        assert services.records == [4, 4]

        services.failures["StreamUsage"] = [UNAVAILABLE]
        with pytest.raises(PromptGaugeError):
            pg.stream_usage(_usage(4))
        assert services.records == [4, 4, 4]

        with pytest.raises(TypeError, match="not an iterator"):
            pg.stream_usage(iter(_usage(4)), retry=True)


# -- the service config --------------------------------------------------------


def _all_methods() -> set[tuple[str, str]]:
    return {
        (service.full_name, method.name)
        for module in (prompts_pb2, analytics_pb2, agents_pb2)
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }


def test_the_client_uses_the_service_config_file():
    packaged = json.loads(SERVICE_CONFIG_FILE.read_text())
    with PromptGaugeClient("127.0.0.1:1", "pgk_x") as pg:
        assert pg.service_config == packaged
    # RetryPolicy's defaults are the file's numbers, so README's RetryPolicy(...) starts from them.
    (entry,) = packaged["methodConfig"]
    assert RetryPolicy().to_json() == entry["retryPolicy"]
    assert RetryPolicy.from_json(entry["retryPolicy"]) == RetryPolicy()
    # Every RPC but those whose repeat differs from the first call is named,
    # one by one: a new RPC needs a decision (docs/retries.md).
    named = {(name["service"], name["method"]) for name in entry["name"]}
    # Every call but those that create a version (sent twice, they would make
    # two) and the deletes (docs/retries.md).
    not_retried = {
        ("promptgauge.v1.PromptService", "CreatePromptVersion"),
        ("promptgauge.v1.PromptService", "EditPromptVersion"),
        ("promptgauge.v1.PromptService", "DeletePromptLabel"),
        ("promptgauge.v1.PromptService", "ClearTrafficSplit"),
        ("promptgauge.v1.AgentService", "CreateAgentVersion"),
    }
    assert named == _all_methods() - not_retried


def test_a_retry_policy_renders_itself_into_the_service_config():
    policy = RetryPolicy(max_attempts=3, initial_backoff_seconds=0.5, max_backoff_seconds=2, multiplier=1.5)
    with PromptGaugeClient("127.0.0.1:1", "pgk_x", retry=policy) as pg:
        (entry,) = pg.service_config["methodConfig"]
    assert entry["retryPolicy"] == {
        "maxAttempts": 3, "initialBackoff": "0.5s", "maxBackoff": "2s",
        "backoffMultiplier": 1.5, "retryableStatusCodes": ["UNAVAILABLE"],
    }
    with PromptGaugeClient("127.0.0.1:1", "pgk_x", retry=NO_RETRY) as pg:
        (entry,) = pg.service_config["methodConfig"]
    assert "retryPolicy" not in entry


def test_a_service_config_of_the_callers_own_is_used(port, services, waits, tmp_path):
    own = {"methodConfig": [{
        "name": [{"service": "promptgauge.v1.AnalyticsService"}],
        "retryPolicy": {"maxAttempts": 2, "initialBackoff": "0.1s", "maxBackoff": "0.1s",
                        "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]},
    }]}
    path = tmp_path / "service_config.json"
    path.write_text(json.dumps(own))
    services.failures["ComparePromptVersions"] = [UNAVAILABLE] * 10
    with stand_in(port, services):
        for config in (own, json.dumps(own), path):
            with PromptGaugeClient(f"127.0.0.1:{port}", "pgk_x", service_config=config) as pg:
                assert pg.service_config == own
                with pytest.raises(PromptGaugeError):
                    pg.compare_prompt_versions("p")
    assert services.calls["ComparePromptVersions"] == 3 * 2


def test_a_service_config_in_the_channel_options_is_merged_over_the_file():
    balancing = {"loadBalancingConfig": [{"round_robin": {}}]}
    options = [("grpc.service_config", json.dumps(balancing))]
    with PromptGaugeClient("127.0.0.1:1", "pgk_x", options=options) as pg:
        assert pg.service_config == {**json.loads(SERVICE_CONFIG_FILE.read_text()), **balancing}


def test_retry_policy_lookup_follows_the_service_config_rules():
    policy = {"maxAttempts": 3, "initialBackoff": "1s", "maxBackoff": "2s", "backoffMultiplier": 2,
              "retryableStatusCodes": ["UNAVAILABLE", 8]}
    config = {"methodConfig": [
        {"name": [{}], "retryPolicy": {**policy, "maxAttempts": 2}},
        {"name": [{"service": "s.S"}], "retryPolicy": policy},
        {"name": [{"service": "s.S", "method": "Write"}]},
    ]}
    assert retries.retry_policy(config, "s.S", "Read") == RetryPolicy(
        3, 1.0, 2.0, 2.0, frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED})
    )
    assert retries.retry_policy(config, "s.S", "Write") == NO_RETRY  # its own entry has no policy
    assert retries.retry_policy(config, "t.T", "Any").max_attempts == 2
    assert retries.retry_policy({}, "s.S", "Read") == NO_RETRY
    with pytest.raises(ValueError, match="initialBackoff"):
        retries.RetryPolicy.from_json({**policy, "initialBackoff": 1})


def test_grpcs_words_for_a_call_it_never_sent_are_recognised():
    refused = ("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: "
               "Failed to connect to remote host: Connection refused")
    assert _unsent_reason(refused) == "connection refused"
    unknown_host = ("errors resolving nosuch.invalid:50051: [field:hostname lookup error:address lookup "
                    "failed for nosuch.invalid:50051: Domain name not found]")
    assert _unsent_reason(unknown_host) == "name resolution failed: domain name not found"
    assert _unsent_reason("the database is unavailable (x); try again") is None


# A Node.js caller with the same file as its channel's service config, and
# with none: one call of each kind, each printing its gRPC status code.
NODE_CALLER = """
const fs = require('node:fs');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const [target, configFile] = process.argv.slice(1);
const definition = protoLoader.loadSync(
  ['promptgauge/v1/prompts.proto', 'promptgauge/v1/analytics.proto'],
  { includeDirs: ['../../protos'], keepCase: true });
const pg = grpc.loadPackageDefinition(definition).promptgauge.v1;
const options = configFile ? { 'grpc.service_config': fs.readFileSync(configFile, 'utf8') } : {};
const analytics = new pg.AnalyticsService(target, grpc.credentials.createInsecure(), options);
const prompts = new pg.PromptService(target, grpc.credentials.createInsecure(), options);
const deadline = () => ({ deadline: Date.now() + 10000 });
analytics.ComparePromptVersions({ name: 'p' }, new grpc.Metadata(), deadline(), (error) => {
  console.log(`compare ${error ? error.code : 0}`);
  prompts.CreatePromptVersion({ name: 'p', template_text: 'x' }, new grpc.Metadata(), deadline(), (e) => {
    console.log(`create ${e ? e.code : 0}`);
    analytics.close();
    prompts.close();
  });
});
"""


@pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_EXAMPLE / "node_modules").is_dir(),
    reason="needs node and examples/node/node_modules (npm ci in examples/node)",
)
def test_a_node_caller_retries_the_same_methods_from_the_same_file(port):
    for config, compare_calls in ((str(SERVICE_CONFIG_FILE), 3), ("", 1)):
        services = StandIn()
        services.failures["ComparePromptVersions"] = [UNAVAILABLE, UNAVAILABLE]
        services.failures["CreatePromptVersion"] = [UNAVAILABLE] * 10
        with stand_in(port, services):
            done = subprocess.run(
                ["node", "-e", NODE_CALLER, f"127.0.0.1:{port}", config],
                cwd=NODE_EXAMPLE, capture_output=True, text=True, timeout=60,
            )
        assert done.returncode == 0, done.stderr
        ok, unavailable = 0, grpc.StatusCode.UNAVAILABLE.value[0]
        expected = [f"compare {ok if config else unavailable}", f"create {unavailable}"]
        assert done.stdout.splitlines() == expected
        assert services.calls == {"ComparePromptVersions": compare_calls, "CreatePromptVersion": 1}
