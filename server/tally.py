"""A version's counters, and the arithmetic that folds observations into them.

Pure values: no database, no gRPC. A checkpoint stores a Tally field by field
(its columns have the same names, see backends/sql.py), and a comparison adds
the observations after the checkpoint to a copy.
"""

from dataclasses import dataclass, fields
from datetime import datetime
from typing import NamedTuple

OBSERVATION_LINKED = 1  # a trace was first linked to the version
OBSERVATION_OUTCOME = 2  # a linked trace's outcome joined the version


class Signals(NamedTuple):
    """What one observation adds to its version's tally, and when.

    `event_time` places it in time (the run's end time, or the link's
    receipt time for a link without an outcome yet). An outcome that joins a
    version after its link carries the link's time as `link_time`: the trace
    moves, in windows and buckets, from the link's time to its end time."""

    kind: int
    success: bool | None
    total_cost_usd: float | None
    duration_ms: float | None
    input_tokens: int | None = None
    output_tokens: int | None = None
    event_time: datetime | None = None
    link_time: datetime | None = None


@dataclass
class Tally:
    """Counters of one version (or of one bucket of it): traces linked, and
    per signal how many outcomes carry it, their sum and (for the t-tests)
    their sum of squares."""

    total_traces: int = 0
    outcome_n: int = 0
    success_n: int = 0
    success_true: int = 0
    cost_n: int = 0
    cost_sum: float = 0.0
    duration_n: int = 0
    duration_sum: float = 0.0
    cost_squares: float = 0.0
    duration_squares: float = 0.0
    input_tokens_n: int = 0
    input_tokens_sum: int = 0
    output_tokens_n: int = 0
    output_tokens_sum: int = 0

    def add(self, observation: Signals) -> float | None:
        """Fold one observation in; return its duration, for the latency sketch."""
        if observation.kind == OBSERVATION_LINKED:
            self.total_traces += 1
            return None
        self.outcome_n += 1
        if observation.success is not None:
            self.success_n += 1
            self.success_true += bool(observation.success)
        cost = observation.total_cost_usd
        if cost is not None:
            self.cost_n += 1
            self.cost_sum += cost
            self.cost_squares += cost * cost
        duration = observation.duration_ms
        if duration is not None:
            self.duration_n += 1
            self.duration_sum += duration
            self.duration_squares += duration * duration
        if observation.input_tokens is not None:
            self.input_tokens_n += 1
            self.input_tokens_sum += observation.input_tokens
        if observation.output_tokens is not None:
            self.output_tokens_n += 1
            self.output_tokens_sum += observation.output_tokens
        return duration

    def merge(self, other: "Tally") -> "Tally":
        """Add another tally's counters (a bucket's) to this one; returns self."""
        for name in TALLY_FIELDS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

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

    @property
    def avg_input_tokens(self) -> float | None:
        return self.input_tokens_sum / self.input_tokens_n if self.input_tokens_n else None

    @property
    def avg_output_tokens(self) -> float | None:
        return self.output_tokens_sum / self.output_tokens_n if self.output_tokens_n else None

    def copy(self) -> "Tally":
        return Tally(**self.as_dict())

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


TALLY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Tally))


def in_window(observation: Signals, start, end) -> tuple[bool, int]:
    """Whether `observation`'s signals fall in [start, end) (None: unbounded),
    and what it moves in or out of the window's trace count: an outcome that
    moved its trace from its link's time to its end time counts it where it
    ended and uncounts it where it was linked (the link's own observation
    counted it there)."""

    def inside(t) -> bool:
        if start is None and end is None:
            return True  # all time: rows from before event times count too
        return t is not None and (start is None or t >= start) and (end is None or t < end)

    here = inside(observation.event_time)
    moved = 0
    if observation.link_time is not None:
        moved = int(here) - int(inside(observation.link_time))
    return here, moved
