"""`promptgauge demo`: a walk-through on a fresh temporary SQLite database."""

import datetime
import random
import sys
import tempfile
import uuid
from pathlib import Path

from promptgauge.client import PromptGaugeClient
from promptgauge.client.format import comparison_table, verdict
from promptgauge.v1 import agents_pb2, analytics_pb2

from . import accounts, storage
from .app import start_server
from .settings import Settings

NAME = "support-classifier"
V1 = "You are a support classifier. Categorize the following ticket: {ticket_text}"
V2 = "You are an expert support classifier. Think step by step before categorizing: {ticket_text}"
TICKET = "My invoice shows a double charge for October."
TRACES_PER_VERSION = 2500
BATCH = 500
# What each version's runs look like: v2 thinks step by step, so it succeeds
# more often and costs a little more time and money.
PROFILES = {
    1: {"success": 0.72, "cost_usd": 0.0031, "median_ms": 1650.0},
    2: {"success": 0.89, "cost_usd": 0.0048, "median_ms": 1980.0},
}


def _synthetic_traces(rng: random.Random):
    """(usage record, outcome) pairs for both versions, interleaved, the runs
    ending over the past day."""
    now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    for _ in range(TRACES_PER_VERSION):
        for version, p in PROFILES.items():
            trace_id = str(uuid.UUID(int=rng.getrandbits(128)))
            usage = analytics_pb2.UsageRecord(prompt_name=NAME, prompt_version=version, trace_id=trace_id)
            outcome = analytics_pb2.TraceOutcome(
                trace_id=trace_id,
                success=rng.random() < p["success"],
                total_cost_usd=round(rng.gauss(p["cost_usd"], p["cost_usd"] * 0.2), 6) or 0.0,
                duration_ms=round(rng.lognormvariate(0, 0.45) * p["median_ms"], 1),
                input_tokens=rng.randint(300, 600),
                output_tokens=rng.randint(20, 60) * version,
            )
            outcome.end_time.FromDatetime(now - datetime.timedelta(seconds=rng.uniform(60, 86_400)))
            outcome.total_cost_usd = max(outcome.total_cost_usd, 0.0)
            yield usage, outcome


class _Progress:
    """A one-line progress bar on a terminal, a few plain lines elsewhere."""

    def __init__(self, total: int, label: str, out):
        self.total, self.label, self.out = total, label, out
        self.tty = out is print and sys.stdout.isatty()
        self.shown = -1

    def update(self, done: int) -> None:
        percent = done * 100 // self.total
        if self.tty:
            bar = "#" * (percent // 4)
            sys.stdout.write(f"\r    {self.label} [{bar:<25}] {percent:3d}% {done:,}/{self.total:,}")
            if done == self.total:
                sys.stdout.write("\n")
            sys.stdout.flush()
        elif percent // 25 > self.shown:
            self.shown = percent // 25
            self.out(f"    {self.label}: {done:,}/{self.total:,} ({percent}%)")


def _stream_traces(pg: PromptGaugeClient, out) -> None:
    pairs = list(_synthetic_traces(random.Random(7)))
    progress = _Progress(2 * len(pairs), "streaming", out)
    sent = 0

    def batches(items):
        nonlocal sent
        for start in range(0, len(items), BATCH):
            batch = items[start : start + BATCH]
            yield batch
            sent += len(batch)
            progress.update(sent)

    usage = pg.stream_usage(batches([u for u, _ in pairs]), timeout=120)
    outcomes = pg.stream_trace_outcomes(batches([o for _, o in pairs]), timeout=120)
    out(f"    usage records: {usage.recorded:,} recorded, {usage.rejected} rejected;"
        f" outcomes: {outcomes.recorded:,} recorded, {outcomes.rejected} rejected")


def _show_versions(pg: PromptGaugeClient, out) -> None:
    for v in pg.iter_prompt_versions(NAME):
        marker = "*" if v.is_active else " "
        out(f"    {marker} v{v.version}  {v.description}")


AGENT = "support-bot"


def _agent_config(model: str) -> agents_pb2.AgentConfig:
    return agents_pb2.AgentConfig(
        kind=agents_pb2.AGENT_KIND_CHAIN,
        model_config={"provider": "openai", "model": model, "temperature": 0.2},
        prompts=[
            agents_pb2.PromptLink(prompt_name="support-system", role="system", sort_order=0),
            agents_pb2.PromptLink(prompt_name=NAME, role="classifier", sort_order=1),
        ],
    )


def _show_agent_versions(pg: PromptGaugeClient, out) -> None:
    for v in pg.list_agent_versions(AGENT).agent_versions:
        marker = "*" if v.is_current else " "
        out(f"    {marker} {v.version}  {v.config.model_config.model}  {v.message}")


def agent_walkthrough(pg: PromptGaugeClient, out=print, step: int = 1) -> None:
    """PromptRails' agent versioning on this server: an agent linking two
    prompts with roles, a second version promoted and rolled back, and a
    prompt promotion that the agent follows with no new version of its own.
    Needs the prompt NAME with an active version; `step` numbers the lines."""
    pg.create_prompt_version("support-system", "You are the support assistant of {product}.")
    pg.create_agent_version(AGENT, _agent_config("gpt-4o"), version="1.0.0", message="Initial version")
    pg.create_agent_version(AGENT, _agent_config("gpt-4.1"), version="1.1.0", message="Newer model",
                            promote=False)
    out(f"{step}. Agent {AGENT} 1.0.0 links support-system (system) and {NAME} (classifier);"
        " 1.1.0 is staged (* = current):")
    _show_agent_versions(pg, out)
    pg.promote_agent_version(AGENT, "1.1.0")
    out(f"{step + 1}. Promoted 1.1.0:")
    _show_agent_versions(pg, out)
    pg.promote_agent_version(AGENT, "1.0.0")
    out(f"{step + 2}. Rolled back: current is {pg.get_agent_version(AGENT).version}.")
    before = pg.resolve_agent(AGENT)
    staged = pg.create_prompt_version(NAME, V2 + " Answer with one word.", activate=False,
                                      description="One-word answers")
    pg.activate_prompt_version(NAME, staged.version)
    after = pg.resolve_agent(AGENT, variables={"product": "Acme", "ticket_text": TICKET})
    used = ", ".join(f"{p.prompt_version.name} v{p.prompt_version.version}" for p in before.prompts)
    now = ", ".join(f"{p.prompt_version.name} v{p.prompt_version.version}" for p in after.prompts)
    out(f"{step + 3}. Promoted {NAME} v{staged.version}; agent {after.agent_version.version} follows it"
        " with no new agent version:")
    out(f"    before: {used}")
    out(f"    now:    {now}")
    for p in after.prompts:
        out(f"    [{p.role}] {p.rendered_text}")


def run_demo(out=print) -> int:
    with tempfile.TemporaryDirectory(prefix="promptgauge-demo-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        running = start_server(Settings(listen="127.0.0.1:0", database_url=url, grace_seconds=1))
        try:
            out(f"promptgauge demo: server on {running.target}, database {url}\n")
            with storage.db.connection_context():
                _, key_id, api_key = accounts.create_account("demo")
            # The database goes with the demo, so showing the key costs nothing.
            out(f"1. Created account 'demo'; its API key (id {key_id}) is {api_key}")

            with PromptGaugeClient(running.target, api_key) as pg:
                v1 = pg.create_prompt_version(NAME, V1, description="Initial version: direct classification")
                v2 = pg.create_prompt_version(
                    NAME, V2, description="Added chain-of-thought instruction", parent_version=1
                )
                out(f"2. Registered {NAME} v{v1.version} and v{v2.version} (parent v{v2.parent_version});"
                    f" variables: {', '.join(v2.variables)}.")

                rendered = pg.render_prompt(NAME, {"ticket_text": TICKET})
                out(f"3. Rendered the active version (v{rendered.version}):\n    {rendered.text}")

                out("4. Versions, newest first (* = active):")
                _show_versions(pg, out)

                pg.activate_prompt_version(NAME, 1)
                out(f"5. Rolled back: active is now v{pg.get_prompt_version(NAME).version}.")
                _show_versions(pg, out)

                pg.activate_prompt_version(NAME, 2)
                out(f"6. Rolled forward: active is now v{pg.get_prompt_version(NAME).version}.")
                _show_versions(pg, out)

                out(f"7. Streaming {TRACES_PER_VERSION:,} synthetic agent runs per version"
                    " (usage links, then outcomes):")
                _stream_traces(pg, out)

                out("8. Comparing the versions (all time; v2, the active one, is the baseline):\n")
                out(comparison_table(pg.compare_prompt_versions(NAME)))
                out("")
                agent_walkthrough(pg, out, step=9)

                since = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=24)
                last_day = pg.compare_prompt_versions(NAME, start_time=since, baseline_version=1)
                out("\n13. The last 24 hours against v1 (`promptgauge compare "
                    f"{NAME} --since 24h --baseline 1`):\n")
                out(comparison_table(last_day))
                out(f"\n{verdict(last_day)}")
        finally:
            running.stop(grace=1)
    out("\nDone. The database was temporary; run `promptgauge serve` for a real one.")
    return 0
