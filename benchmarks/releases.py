"""`python -m benchmarks.releases [--backend sqlite|postgres] [--rounds N] [--out FILE]`

Issue 14's figures, on real `promptgauge serve` processes on loopback:

- (h) feed delay: two replicas on one database, a WatchPrompts stream on
  replica B, 100 ActivatePromptVersion calls through replica A; the delay is
  from the moment A's call returned to the moment B's watcher received the
  state (0 when it arrived first). Target on PostgreSQL: p99 < 100 ms.
- (c) unary RecordUsage with the API-key cache off (--api-key-cache-size 0:
  the key read from the database on every call, as before the cache) and on
  (the default), against the echo server: the same server code, so the
  difference is the cache's. Runs alternate off/on `--rounds` times, so
  that the machine's load falls on both alike; the median round is reported.
"""

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

from promptgauge.client import PromptGaugeClient
from promptgauge.v1 import analytics_pb2

from .__main__ import DEFAULT_PG_URL, Driver, _database, _echo, _new_account, _percentile, _serve, _trace_ids

ACTIVATIONS = 100


def measure_feed_delay(url: str, key: str, activations: int = ACTIVATIONS) -> dict:
    with _serve(url) as (_, a), _serve(url) as (_, b), \
            PromptGaugeClient(a, key) as on_a, PromptGaugeClient(b, key) as on_b:
        on_a.create_prompt_version("feed", "one")
        on_a.create_prompt_version("feed", "two", activate=False)
        received: dict[int, float] = {}  # sequence -> when B's watcher had it
        arrived = threading.Condition()
        watching = threading.Event()
        call = on_b.watch_prompts(["feed"])

        def read():
            try:
                for message in call:
                    now = time.perf_counter()
                    watching.set()  # the first message: the stream is subscribed
                    with arrived:
                        for event in message.events:
                            received[event.sequence] = now
                        arrived.notify_all()
            except grpc.RpcError:
                pass  # cancelled at the end

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        if not watching.wait(10):
            raise RuntimeError("no first message from replica B's WatchPrompts within 10 s")
        delays = []
        for n in range(activations):
            version = 2 if n % 2 == 0 else 1
            before = len(received)
            on_a.activate_prompt_version("feed", version)
            acked = time.perf_counter()
            with arrived:
                if not arrived.wait_for(lambda before=before: len(received) > before, 10):
                    raise RuntimeError("the watcher on replica B heard nothing within 10 s")
                delays.append(max(0.0, max(received.values()) - acked))
        call.cancel()
    return {
        "activations": activations,
        "p50_ms": _percentile(delays, 0.5) * 1e3,
        "p99_ms": _percentile(delays, 0.99) * 1e3,
        "max_ms": max(delays) * 1e3,
    }


def measure_unary(url: str, key: str, calls: int, rounds: int) -> dict:
    runs: dict[str, list[dict]] = {"off": [], "on": []}
    with _echo() as (_, echo_target):
        echo = Driver(echo_target)
        try:
            for _ in range(rounds):
                for mode, size in (("off", "0"), ("on", "10000")):
                    with _serve(url, "--api-key-cache-size", size) as (_, target):
                        if not runs["off"]:  # the first server: the prompt the calls link to
                            with PromptGaugeClient(target, key) as pg:
                                pg.create_prompt_version("unary", "x")
                        requests = [
                            analytics_pb2.RecordUsageRequest(
                                usage=analytics_pb2.UsageRecord(
                                    prompt_name="unary", prompt_version=1, trace_id=t
                                )
                            )
                            for t in _trace_ids(calls)
                        ]
                        real = Driver(target, key)
                        try:
                            real.unary(requests[: calls // 10])  # warm: connections, prepared statements
                            result = real.unary(requests)
                        finally:
                            real.close()
                    baseline = echo.unary(requests)
                    result["ratio"] = result["rps"] / baseline["rps"]
                    result["baseline_rps"] = baseline["rps"]
                    runs[mode].append(result)
        finally:
            echo.close()
    out = {}
    for mode, results in runs.items():
        middle = sorted(results, key=lambda r: r["ratio"])[len(results) // 2]
        out[mode] = {**middle, "ratios": [round(r["ratio"], 3) for r in results]}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.releases", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL)
    parser.add_argument("--calls", type=int, default=2000, help="unary calls per round of (c)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--activations", type=int, default=ACTIVATIONS)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="promptgauge-bench-") as tmp, \
            _database(args.backend, Path(tmp), args.postgres_url, "releases") as url:
        key, _ = _new_account(url)
        print("(h) feed delay ...", file=sys.stderr, flush=True)
        feed = measure_feed_delay(url, key, args.activations)
        print("(c) unary, key cache off and on ...", file=sys.stderr, flush=True)
        unary = measure_unary(url, key, args.calls, args.rounds)
    results = {"backend": args.backend, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
               "feed_delay": feed, "unary_usage": unary}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    met = "yes" if feed["p99_ms"] < 100 else "NO"
    print(f"{'figure':<52} {'value':<26} target")
    delay = f"p50 {feed['p50_ms']:.1f} / p99 {feed['p99_ms']:.1f} ms"
    print(f"{'(h) feed delay, 100 activations A -> watcher on B':<52} {delay:<26} p99 < 100 ms: {met}")
    for mode in ("off", "on"):
        u = unary[mode]
        rate = f"{u['rps']:.0f} req/s, ratio {u['ratio']:.2f}"
        print(f"{'(c) RecordUsage unary, key cache ' + mode:<52} {rate:<26} "
              f"p50 {u['p50_ms']:.2f} / p99 {u['p99_ms']:.2f} ms; ratios {u['ratios']}")
    change = statistics.median(unary["on"]["ratios"]) - statistics.median(unary["off"]["ratios"])
    print(f"median ratio change with the key cache: {change:+.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
