"""WatchPrompts and the change feed through the real boundary (issue 14):
first states, pushed changes, resume, isolation, errors, changes by another
process or replica, keepalives, shutdown, and hundreds of idle watchers."""

import queue
import threading

import grpc
import pytest
from conftest import create_account, database_url, make_account, serve_process, skip_without_postgres

from promptgauge.client import PromptGaugeClient, PromptGaugeError
from promptgauge.v1 import prompts_pb2

KIND = prompts_pb2.EventKind
WAIT = 10  # seconds any one expected message may take at most


class Reader:
    """A watch stream read on a thread of its own, its messages in a queue."""

    def __init__(self, call):
        self.call = call
        self.messages: queue.Queue = queue.Queue()
        self.error: grpc.RpcError | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        try:
            for message in self.call:
                self.messages.put(message)
        except grpc.RpcError as error:
            self.error = error
        self.messages.put(None)

    def next(self, skip_keepalives: bool = True) -> prompts_pb2.WatchPromptsResponse | None:
        while True:
            message = self.messages.get(timeout=WAIT)
            if message is None or not skip_keepalives or message.events or message.states:
                return message

    def close(self):
        self.call.cancel()
        self.thread.join(WAIT)


@pytest.fixture
def watch(client):
    readers = []

    def open_(pg=client, names=(), after_sequence=0):
        reader = Reader(pg.watch_prompts(names, after_sequence))
        readers.append(reader)
        return reader

    yield open_
    for reader in readers:
        reader.close()


def states_of(message) -> dict[str, tuple]:
    return {s.name: (s.active_version, dict(s.labels), [(a.version, a.weight) for a in s.split])
            for s in message.states}


def test_first_message_is_the_current_states_then_changes_are_pushed(client, watch):
    client.create_prompt_version("a", "one")
    client.create_prompt_version("a", "two", activate=False)
    client.set_prompt_label("a", "production", 2)
    client.create_prompt_version("b", "bee")
    reader = watch()
    first = reader.next()
    assert states_of(first) == {"a": (1, {"production": 2}, []), "b": (1, {}, [])}
    assert not first.events
    assert {s.name: s.latest_version for s in first.states} == {"a": 2, "b": 1}
    client.activate_prompt_version("a", 2)
    pushed = reader.next()
    assert [(e.kind, e.name, e.version, e.previous_version) for e in pushed.events] == [
        (KIND.EVENT_KIND_VERSION_ACTIVATED, "a", 2, 1)]
    assert states_of(pushed) == {"a": (2, {"production": 2}, [])}
    assert pushed.events[0].sequence > first.states[0].sequence
    client.set_traffic_split("a", {1: 1, 2: 3})
    split = reader.next()
    assert states_of(split)["a"][2] == [(1, 1), (2, 3)]
    assert split.states[0].split_id == split.events[0].split.split_id
    # A prompt created after the watch began is watched too (no names given).
    client.create_prompt_version("c", "new")
    created = reader.next()
    assert [(e.kind, e.name) for e in created.events] == [
        (KIND.EVENT_KIND_VERSION_CREATED, "c"), (KIND.EVENT_KIND_VERSION_ACTIVATED, "c")]


def test_resume_after_a_sequence_misses_nothing(client, watch):
    client.create_prompt_version("r", "one")
    first = watch().next()
    seen = first.states[0].sequence
    client.create_prompt_version("r", "two", activate=False)
    client.activate_prompt_version("r", 2)
    client.set_prompt_label("r", "canary", 1)
    resumed = watch(after_sequence=seen).next()
    assert [(e.kind, e.version) for e in resumed.events] == [
        (KIND.EVENT_KIND_VERSION_CREATED, 2), (KIND.EVENT_KIND_VERSION_ACTIVATED, 2),
        (KIND.EVENT_KIND_LABEL_SET, 1)]
    assert states_of(resumed) == {"r": (2, {"canary": 1}, [])}
    history = [e.sequence for e in client.iter_prompt_history("r")]
    assert [e.sequence for e in resumed.events] == sorted(s for s in history if s > seen)


def test_names_filter_and_account_isolation(client, other_client, watch):
    client.create_prompt_version("mine", "x")
    client.create_prompt_version("also-mine", "x")
    other_client.create_prompt_version("mine", "theirs")
    only = watch(names=["mine"])
    theirs = watch(pg=other_client)
    assert set(states_of(only.next())) == {"mine"}
    assert set(states_of(theirs.next())) == {"mine"}
    client.create_prompt_version("also-mine", "y")  # not watched by `only`, not the other account's
    client.create_prompt_version("mine", "y")
    other_client.create_prompt_version("mine", "theirs 2", activate=False)
    assert {e.name for e in only.next().events} == {"mine"}
    pushed = theirs.next()
    assert [(e.kind, e.version) for e in pushed.events] == [(KIND.EVENT_KIND_VERSION_CREATED, 2)]
    assert states_of(pushed) == {"mine": (1, {}, [])}


def test_bad_watch_requests_fail_with_a_clear_status(client, other_client):
    client.create_prompt_version("exists", "x")

    def failure(pg, **kwargs) -> PromptGaugeError:
        with pytest.raises(grpc.RpcError) as err:
            next(iter(pg.watch_prompts(timeout=WAIT, **kwargs)))
        return PromptGaugeError.from_rpc_error(err.value)

    missing = failure(client, names=["exists", "missing"])
    assert (missing.code, missing.field) == (grpc.StatusCode.NOT_FOUND, "names[1]")
    assert failure(other_client, names=["exists"]).code == grpc.StatusCode.NOT_FOUND
    assert failure(client, names=["Bad Name"]).code == grpc.StatusCode.INVALID_ARGUMENT
    many = failure(client, names=[f"n{i}" for i in range(101)])
    assert (many.code, many.field) == (grpc.StatusCode.INVALID_ARGUMENT, "names")
    negative = failure(client, after_sequence=-1)
    assert (negative.code, negative.field) == (grpc.StatusCode.INVALID_ARGUMENT, "after_sequence")
    with PromptGaugeClient(client.target, "pgk_not-a-key") as stranger:
        assert failure(stranger).code == grpc.StatusCode.UNAUTHENTICATED


def test_sqlite_change_by_another_process_reaches_the_watcher(server, client, api_key, watch):
    if not server.settings.database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL replicas are tested in test_two_replicas_on_postgres")
    client.create_prompt_version("cross", "one")
    client.create_prompt_version("cross", "two", activate=False)
    reader = watch(names=["cross"])
    reader.next()
    with serve_process(server.settings.database_url) as (_, target), \
            PromptGaugeClient(target, api_key) as there:
        there.activate_prompt_version("cross", 2)
        pushed = reader.next()
    assert states_of(pushed) == {"cross": (2, {}, [])}


def test_two_replicas_on_postgres_a_watcher_on_b_sees_an_activation_through_a(tmp_path):
    skip_without_postgres()
    with database_url("postgres", tmp_path) as url:
        key = create_account(url)
        with serve_process(url) as (_, a), serve_process(url) as (_, b), \
                PromptGaugeClient(a, key) as on_a, PromptGaugeClient(b, key) as on_b:
            on_a.create_prompt_version("p", "one")
            on_a.create_prompt_version("p", "two", activate=False)
            reader = Reader(on_b.watch_prompts(["p"]))
            try:
                assert states_of(reader.next()) == {"p": (1, {}, [])}
                for version in (2, 1, 2):
                    on_a.activate_prompt_version("p", version)
                    assert states_of(reader.next()) == {"p": (version, {}, [])}
            finally:
                reader.close()


def test_keepalives_flow_on_a_quiet_stream_and_shutdown_ends_it_with_a_reason(backend, tmp_path):
    with database_url(backend, tmp_path) as url:
        key = create_account(url)
        with serve_process(url, "--watch-keepalive-seconds", "0.2") as (proc, target), \
                PromptGaugeClient(target, key) as pg:
            pg.create_prompt_version("k", "x")
            reader = Reader(pg.watch_prompts())
            assert reader.next().states
            keepalive = reader.next(skip_keepalives=False)
            assert keepalive is not None and not keepalive.events and not keepalive.states
            proc.terminate()
            while reader.next(skip_keepalives=True) is not None:
                pass
            error = PromptGaugeError.from_rpc_error(reader.error)
            assert (error.code, error.reason) == (grpc.StatusCode.UNAVAILABLE, "SHUTTING_DOWN")
            assert proc.wait(timeout=30) == 0


WATCHERS = 300


def test_hundreds_of_idle_watchers_hold_no_worker_and_all_hear_a_change(backend, tmp_path):
    with database_url(backend, tmp_path) as url:
        key = create_account(url)
        with serve_process(url, "--workers", "16") as (_, target), PromptGaugeClient(target, key) as pg:
            pg.create_prompt_version("idle", "one")
            pg.create_prompt_version("idle", "two", activate=False)
            readers = [Reader(pg.watch_prompts(["idle"])) for _ in range(WATCHERS)]
            try:
                for reader in readers:
                    assert states_of(reader.next()) == {"idle": (1, {}, [])}
                # All open and idle: unary calls still answer at once, more of them than workers.
                with PromptGaugeClient(target, key, timeout=5) as short:
                    for _ in range(20):
                        assert short.get_prompt_version("idle").version == 1
                pg.activate_prompt_version("idle", 2)
                for reader in readers:
                    assert states_of(reader.next()) == {"idle": (2, {}, [])}
            finally:
                for reader in readers:
                    reader.close()


def test_watcher_of_a_new_account_hears_changes_made_right_after_it_opens(server):
    """The first watcher of an account sets where the feed reads from: a
    change committed between its first read and that point is not lost."""
    key = make_account()
    with PromptGaugeClient(server.target, key) as pg:
        pg.create_prompt_version("race", "one")
        for n in range(2, 12):
            reader = Reader(pg.watch_prompts(["race"]))
            try:
                reader.next()
                pg.create_prompt_version("race", f"v{n}")
                assert states_of(reader.next()) == {"race": (n, {}, [])}
            finally:
                reader.close()


def test_resume_from_too_far_back_gets_fresh_states(client, watch, monkeypatch):
    from promptgauge.server import servicers

    client.create_prompt_version("old", "one")
    seen = watch().next().states[0].sequence
    for n in range(2, 5):
        client.create_prompt_version("old", f"v{n}")  # six events since `seen`
    monkeypatch.setattr(servicers, "MAX_EVENTS", 4)
    resumed = watch(after_sequence=seen).next()
    assert not resumed.events
    assert states_of(resumed) == {"old": (4, {}, [])}
    assert resumed.states[0].sequence == max(e.sequence for e in client.iter_prompt_history("old"))
