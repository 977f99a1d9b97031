"""`promptgauge demo`: a walk-through on a fresh temporary SQLite database."""

import tempfile
from pathlib import Path

from promptgauge.client import PromptGaugeClient

from . import accounts, storage
from .app import start_server
from .settings import Settings

NAME = "support-classifier"
V1 = "You are a support classifier. Categorize the following ticket: {ticket_text}"
V2 = "You are an expert support classifier. Think step by step before categorizing: {ticket_text}"
TICKET = "My invoice shows a double charge for October."


def _show_versions(pg: PromptGaugeClient, out) -> None:
    for v in pg.iter_prompt_versions(NAME):
        marker = "*" if v.is_active else " "
        out(f"    {marker} v{v.version}  {v.description}")


def run_demo(out=print) -> int:
    with tempfile.TemporaryDirectory(prefix="promptgauge-demo-") as tmp:
        url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        running = start_server(Settings(listen="127.0.0.1:0", database_url=url, grace_seconds=1))
        try:
            out(f"promptgauge demo: server on {running.target}, database {url}\n")
            with storage.db.connection_context():
                _, key_id, api_key = accounts.create_account("demo")
            out(f"1. Created account 'demo' with API key {key_id}.")

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
        finally:
            running.stop(grace=1)
    out("\nDone. The database was temporary; run `promptgauge serve` for a real one.")
    return 0
