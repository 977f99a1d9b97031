"""The benchmark at smoke scale, so that it cannot rot: it runs end to end
(real server and echo processes, the raw baseline, every figure), against a
server that stores what it is sent (the benchmark checks every stream's
summary and every comparison's count, and fails otherwise), and what it
measures is what the server returned. Never how fast anything is."""

import json
import math
import subprocess
import sys
from pathlib import Path

from conftest import PG_URL

REPO = Path(__file__).resolve().parent.parent
RATES = ("stream_usage_500", "stream_outcomes_500", "stream_usage_1", "stream_outcomes_1", "unary_usage")


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_the_smoke_benchmark_produces_every_figure(tmp_path):
    out = tmp_path / "smoke.json"
    backend = "all" if PG_URL else "sqlite"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--scale", "smoke", "--backend", backend,
         "--postgres-url", PG_URL or "postgresql://unused", "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr
    assert "(a) StreamUsage, 500/message" in done.stdout
    results = json.loads(out.read_text())
    assert set(results["backends"]) == ({"sqlite", "postgres"} if PG_URL else {"sqlite"})
    for backend_name, figures in results["backends"].items():
        for key in RATES:
            f = figures[key]
            assert _positive(f["value"]) and _positive(f["baseline"]), (backend_name, key, f)
        compare = figures["compare"]
        scales = [k for k in compare if k.isdigit()]
        assert scales == ["1000", "2000", "4000"]
        for n in scales:
            # Every trace loaded for the scale (half its observations) was counted.
            assert compare[n]["total_traces"] == int(n) // 2
            # A few hundred durations a version: loose, but a broken sketch is far off.
            assert 0 <= compare[n]["p95_max_rel_error"] < 0.2
        assert _positive(compare["p99_growth"])
        otlp = figures["otlp"]
        for key in ("export_ms", "echo_export_ms", "export_links_only_ms", "stream_usage_ms"):
            assert _positive(otlp[key]), (backend_name, key, otlp)
        assert otlp["export_bytes"] > 10_000 * 100  # ten thousand spans, each with its attributes
        assert 20 < figures["server_peak_rss_mb"] < 2000
        assert set(figures["targets_met"].values()) <= {True, False}
    for shape in ("lognormal", "bimodal"):
        accuracy = results["accuracy"][shape]
        assert accuracy["values"] > 0 and accuracy["centroids"] > 0
        assert 0 <= accuracy["p95_rel_error"] < 0.05
        assert 0 <= accuracy["p99_rel_error"] < 0.05


def test_the_releases_benchmark_produces_its_figures(tmp_path):
    out = tmp_path / "releases.json"
    backend = "postgres" if PG_URL else "sqlite"
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.releases", "--backend", backend, "--postgres-url",
         PG_URL or "postgresql://unused", "--activations", "5", "--calls", "50", "--rounds", "1",
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text())
    assert results["feed_delay"]["activations"] == 5
    assert all(math.isfinite(results["feed_delay"][k]) for k in ("p50_ms", "p99_ms"))
    for mode in ("off", "on"):
        assert _positive(results["unary_usage"][mode]["rps"])
