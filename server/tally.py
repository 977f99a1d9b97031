"""A version's counters, and the arithmetic that folds observations into them.

Pure values: no database, no gRPC. A checkpoint stores a Tally field by field
(its columns have the same names, see backends/sql.py), and a comparison adds
the observations after the checkpoint to a copy.
"""

from dataclasses import dataclass, fields
from typing import NamedTuple

OBSERVATION_LINKED = 1  # a trace was first linked to the version
OBSERVATION_OUTCOME = 2  # a linked trace's outcome joined the version


class Signals(NamedTuple):
    """What one observation adds to its version's tally."""

    kind: int
    success: bool | None
    total_cost_usd: float | None
    duration_ms: float | None


@dataclass
class Tally:
    """Counters of one version: traces linked, and per signal how many
    outcomes carry it and their sum."""

    total_traces: int = 0
    success_n: int = 0
    success_true: int = 0
    cost_n: int = 0
    cost_sum: float = 0.0
    duration_n: int = 0
    duration_sum: float = 0.0

    def add(self, observation: Signals) -> float | None:
        """Fold one observation in; return its duration, for the latency sketch."""
        if observation.kind == OBSERVATION_LINKED:
            self.total_traces += 1
            return None
        if observation.success is not None:
            self.success_n += 1
            self.success_true += bool(observation.success)
        if observation.total_cost_usd is not None:
            self.cost_n += 1
            self.cost_sum += observation.total_cost_usd
        if observation.duration_ms is not None:
            self.duration_n += 1
            self.duration_sum += observation.duration_ms
        return observation.duration_ms

    def add_all(self, observations) -> list[float]:
        """Fold observations in order; return their durations."""
        return [d for d in map(self.add, observations) if d is not None]

    @property
    def success_rate(self) -> float | None:
        return self.success_true / self.success_n if self.success_n else None

    @property
    def avg_cost_usd(self) -> float | None:
        return self.cost_sum / self.cost_n if self.cost_n else None

    @property
    def avg_latency_ms(self) -> float | None:
        return self.duration_sum / self.duration_n if self.duration_n else None

    def copy(self) -> "Tally":
        return Tally(**self.as_dict())

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


TALLY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Tally))
