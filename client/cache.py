"""PromptCache: get, render and resolve prompts from memory, kept fresh by
WatchPrompts instead of a TTL.

The server pushes every change as it commits, so a read after a promotion
returns the promoted version as soon as the feed delivers it (docs/performance.md
has the measured delay). Version texts are fetched once and kept: versions are
immutable. When the stream breaks, the cache reconnects with backoff and
resumes from the last sequence it saw; meanwhile it serves what it knew and
says so (`stale`).
"""

import random
import threading
from collections.abc import Iterable, Mapping

import grpc

from promptgauge.server.errors import InvalidArgument
from promptgauge.server.releases import Arm, Split
from promptgauge.server.templates import parse
from promptgauge.v1 import prompts_pb2

from .client import PromptGaugeError

# Codes after which watching again cannot help: the cache stops and says why.
_FINAL = frozenset({
    grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNIMPLEMENTED,
})


class PromptCache:
    """The prompts of an account (or those named), in memory.

    >>> with pg.prompt_cache(names=["support"]) as cache:
    ...     cache.render("support", {"ticket": text})

    The constructor waits (up to `timeout` seconds, the client's by default)
    for the first state; reads never wait on the network, except to fetch a
    version's text the first time it is needed."""

    def __init__(
        self,
        client,
        names: Iterable[str] = (),
        *,
        timeout: float | None = None,
        backoff_seconds: tuple[float, ...] = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0),
    ):
        self._client = client
        self._names = list(names)
        self._backoff = backoff_seconds
        self._lock = threading.RLock()  # wait_for predicates read under it
        self._changed = threading.Condition(self._lock)
        self._states: dict[str, prompts_pb2.PromptState] = {}
        self._splits: dict[str, Split] = {}
        self._versions: dict[tuple[str, int], prompts_pb2.PromptVersion] = {}
        self._fetching = threading.Lock()
        self._sequence = 0
        self._connected = False
        self._loaded = False
        self._error: PromptGaugeError | None = None
        self._closing = threading.Event()
        self._call = None
        self._thread = threading.Thread(target=self._run, name="promptgauge-cache", daemon=True)
        self._thread.start()
        with self._changed:
            if not self._changed.wait_for(lambda: self._loaded or self._error, timeout or client.timeout):
                self._closing.set()
                raise PromptGaugeError(grpc.StatusCode.UNAVAILABLE,
                                       f"no prompt states from {client.target} within the timeout")
        if self._error is not None and not self._loaded:
            raise self._error

    def __enter__(self) -> "PromptCache":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._closing.set()
        call = self._call
        if call is not None:
            call.cancel()
        self._thread.join(10)

    # -- state -------------------------------------------------------------------

    @property
    def stale(self) -> bool:
        """True while the server is unreachable: reads serve the last known state."""
        return not self._connected

    @property
    def sequence(self) -> int:
        """The last feed sequence applied."""
        return self._sequence

    @property
    def error(self) -> PromptGaugeError | None:
        """Why the cache stopped watching for good (a revoked key...), if it did."""
        return self._error

    def wait_for(self, predicate, timeout: float) -> bool:
        """Wait until `predicate(cache)` holds (checked at each change), at most `timeout` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self), timeout)

    def _run(self) -> None:
        attempt = 0
        while not self._closing.is_set():
            try:
                self._call = self._client.watch_prompts(self._names, self._sequence)
                for message in self._call:
                    self._apply(message)
                    attempt = 0
                    self._prefetch(message.states)
            except PromptGaugeError:
                self._call.cancel()  # a text could not be fetched: the server went away mid-stream
            except grpc.RpcError as error:
                if self._closing.is_set():
                    return
                if error.code() in _FINAL:
                    with self._changed:
                        self._error = PromptGaugeError.from_rpc_error(error, self._client.target)
                        self._connected = False
                        self._changed.notify_all()
                    return
            with self._changed:
                self._connected = False
                self._changed.notify_all()
            delay = self._backoff[min(attempt, len(self._backoff) - 1)]
            attempt += 1
            self._closing.wait(delay * random.uniform(0.8, 1.2))  # jitter: replicas' clients spread out

    def _apply(self, message: prompts_pb2.WatchPromptsResponse) -> None:
        with self._changed:
            for state in message.states:
                self._states[state.name] = state
                if state.split:
                    arms = tuple(Arm(a.version, a.weight, tuple((r.start, r.end) for r in a.buckets))
                                 for a in state.split)
                    self._splits[state.name] = Split(state.split_id, arms)
                else:
                    self._splits.pop(state.name, None)
                self._sequence = max(self._sequence, state.sequence)
            for event in message.events:
                self._sequence = max(self._sequence, event.sequence)
            self._connected = self._loaded = True
            self._changed.notify_all()

    def _prefetch(self, states) -> None:
        """Fetch the texts a read may need next (the active version, the
        labelled ones, the split's), so that they are at hand even if the
        server becomes unreachable."""
        for state in states:
            wanted = {state.active_version, *state.labels.values(), *(a.version for a in state.split)}
            for number in sorted(wanted - {0}):
                self._text(state.name, number)

    def _text(self, name: str, number: int) -> prompts_pb2.PromptVersion:
        """A version as fetched once (one fetch at a time: never twice)."""
        stored = self._versions.get((name, number))
        if stored is None:
            with self._fetching:
                stored = self._versions.get((name, number))
                if stored is None:
                    stored = self._versions[name, number] = self._client.get_prompt_version(name, number)
        return stored

    # -- reads -------------------------------------------------------------------

    def _state(self, name: str) -> prompts_pb2.PromptState:
        state = self._states.get(name)
        if state is None:
            raise PromptGaugeError(grpc.StatusCode.NOT_FOUND, f"prompt {name!r} not found", field="name")
        return state

    def _number(self, state: prompts_pb2.PromptState, version: int | None, label: str) -> int:
        if version is not None and label:
            raise PromptGaugeError(grpc.StatusCode.INVALID_ARGUMENT, "give a version or a label, not both",
                                   field="label")
        if label == "active" or (version is None and not label):
            return state.active_version
        if label == "latest":
            return state.latest_version
        if label:
            if label not in state.labels:
                raise PromptGaugeError(grpc.StatusCode.NOT_FOUND,
                                       f"prompt {state.name!r} has no label {label!r}", field="label")
            return state.labels[label]
        return version

    def _version(self, state: prompts_pb2.PromptState, number: int) -> prompts_pb2.PromptVersion:
        stored = self._text(state.name, number)
        # What moves (active, labels) comes from the state, not from the text fetched once.
        shown = prompts_pb2.PromptVersion()
        shown.CopyFrom(stored)
        shown.is_active = number == state.active_version
        del shown.labels[:]
        shown.labels.extend(sorted(k for k, v in state.labels.items() if v == number))
        return shown

    def get(self, name: str, version: int | None = None, *, label: str = "") -> prompts_pb2.PromptVersion:
        """A version by number or label; with neither, the active one."""
        with self._lock:
            state = self._state(name)
            number = self._number(state, version, label)
        return self._version(state, number)

    def render(
        self, name: str, variables: Mapping[str, str], version: int | None = None, *, label: str = ""
    ) -> str:
        """A version's template filled with `variables`, as RenderPrompt would."""
        return _rendered(self.get(name, version, label=label), variables)

    def resolve(
        self, name: str, *, subject: str = "", label: str = "", trace_id: str = "",
        variables: Mapping[str, str] | None = None,
    ) -> prompts_pb2.ResolvePromptResponse:
        """What ResolvePrompt would answer (label, else split, else active),
        from memory; a `trace_id` is linked with one RecordUsage call."""
        with self._lock:
            state = self._state(name)
            split = self._splits.get(name)
            if label:
                number = self._number(state, None, label)
            else:
                number = split.choose(subject) if split else state.active_version
        chosen = self._version(state, number)
        if trace_id:
            self._client.record_usage(name, number, trace_id)
        text = _rendered(chosen, variables) if variables else ""
        return prompts_pb2.ResolvePromptResponse(prompt_version=chosen, rendered_text=text)


def _rendered(version: prompts_pb2.PromptVersion, variables: Mapping[str, str]) -> str:
    try:
        return parse(version.template_text).render(dict(variables))
    except InvalidArgument as error:  # it names the missing variables
        raise PromptGaugeError(grpc.StatusCode.INVALID_ARGUMENT, str(error), field="variables") from None
