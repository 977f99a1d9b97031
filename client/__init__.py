"""The Python client of promptgauge: a thin typed layer over the generated stubs."""

from .client import PromptGaugeClient, PromptGaugeError
from .retries import NO_RETRY, RetryPolicy, load_service_config

__all__ = ["NO_RETRY", "PromptGaugeClient", "PromptGaugeError", "RetryPolicy", "load_service_config"]
