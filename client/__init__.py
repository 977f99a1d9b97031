"""The Python client of promptgauge: a thin typed layer over the generated stubs."""

from .client import PromptGaugeClient, PromptGaugeError

__all__ = ["PromptGaugeClient", "PromptGaugeError"]
