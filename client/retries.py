"""The retry policy, declared once in the gRPC service config that ships with
this package (service_config.json), so that callers in every language retry
the same methods the same way. docs/retries.md explains each number."""

import json
import os
import random
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

import grpc

SERVICE_CONFIG_FILE = "service_config.json"

# A service config names status codes by name or by number.
_CODES = {code.name: code for code in grpc.StatusCode} | {code.value[0]: code for code in grpc.StatusCode}


@dataclass(frozen=True)
class RetryPolicy:
    """How a call is tried again after a retryable failure, as a gRFC A6
    `retryPolicy` says: `max_attempts` tries in all, retry n after a random
    wait of up to min(initial * multiplier**(n-1), max) seconds, on the
    `retryable_codes`. Every try and wait fits in the call's one deadline."""

    max_attempts: int = 5
    initial_backoff_seconds: float = 0.2
    max_backoff_seconds: float = 5.0
    multiplier: float = 2.0
    retryable_codes: frozenset[grpc.StatusCode] = frozenset({grpc.StatusCode.UNAVAILABLE})

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before try number `attempt` + 1 (attempt counts from 1)."""
        growth = self.multiplier ** (attempt - 1)
        ceiling = min(self.max_backoff_seconds, self.initial_backoff_seconds * growth)
        return random.uniform(0, ceiling)

    def to_json(self) -> dict | None:
        """This policy as a service config's `retryPolicy`; None for one
        attempt, which a service config says by having no retryPolicy (A6
        requires maxAttempts of 2 or more)."""
        if self.max_attempts < 2:
            return None
        return {
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff_seconds:g}s",
            "maxBackoff": f"{self.max_backoff_seconds:g}s",
            "backoffMultiplier": self.multiplier,
            "retryableStatusCodes": sorted(code.name for code in self.retryable_codes),
        }

    @classmethod
    def from_json(cls, policy: Mapping) -> "RetryPolicy":
        """A service config's `retryPolicy` as a RetryPolicy."""
        try:
            return cls(
                max_attempts=int(policy["maxAttempts"]),
                initial_backoff_seconds=_seconds(policy["initialBackoff"]),
                max_backoff_seconds=_seconds(policy["maxBackoff"]),
                multiplier=float(policy["backoffMultiplier"]),
                retryable_codes=frozenset(_CODES[code] for code in policy["retryableStatusCodes"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"service config: a retryPolicy needs maxAttempts, initialBackoff and maxBackoff "
                f'(such as "0.2s"), backoffMultiplier and retryableStatusCodes: {policy!r} ({error})'
            ) from None


NO_RETRY = RetryPolicy(max_attempts=1)


def _seconds(duration: str) -> float:
    """A service config's duration ("0.2s": protobuf's Duration in JSON) in seconds."""
    if not isinstance(duration, str) or not duration.endswith("s"):
        raise ValueError(f"{duration!r} is not a duration such as '0.2s'")
    return float(duration[:-1])


def load_service_config(source: Mapping | str | os.PathLike | None = None) -> dict:
    """A service config as a new dict: the one packaged with the client when
    `source` is None, else `source` itself (a mapping), its JSON text, or the
    path of a JSON file."""
    if source is None:
        text = resources.files(__package__).joinpath(SERVICE_CONFIG_FILE).read_text()
    elif isinstance(source, Mapping):
        text = json.dumps(source)
    elif isinstance(source, str) and source.lstrip().startswith("{"):
        text = source
    else:
        with open(source) as f:
            text = f.read()
    return json.loads(text)


def with_retry_policy(config: Mapping, policy: RetryPolicy) -> dict:
    """`config` with `policy` in place of each retryPolicy in it, or with none
    for a policy of one attempt: the methods that retry stay those it names."""
    rendered = policy.to_json()
    config = load_service_config(config)
    for entry in config.get("methodConfig", []):
        if "retryPolicy" in entry:
            if rendered is None:
                del entry["retryPolicy"]
            else:
                entry["retryPolicy"] = rendered
    return config


def without_retry_policies(config: Mapping) -> dict:
    """`config` with no retryPolicy left in it."""
    return with_retry_policy(config, NO_RETRY)


def retry_policy(config: Mapping, service: str, method: str) -> RetryPolicy:
    """The policy `config` gives a method (`service` is the full name, such as
    promptgauge.v1.PromptService), by the service config's rule: the entry
    naming the method wins over one naming its service alone, which wins over
    a default entry ({}). NO_RETRY where the entry that applies has none."""
    chosen, rank = None, 0
    for entry in config.get("methodConfig", []):
        for name in entry.get("name", []):
            named_service, named_method = name.get("service", ""), name.get("method", "")
            if named_service == service and named_method == method:
                match = 3
            elif named_service == service and not named_method:
                match = 2
            elif not named_service and not named_method:
                match = 1
            else:
                continue
            if match > rank:
                chosen, rank = entry, match
    if chosen is None or "retryPolicy" not in chosen:
        return NO_RETRY
    return RetryPolicy.from_json(chosen["retryPolicy"])
