"""Which faults a sandbox injects: :class:`FaultConfig`, the same for every sandbox.

A fault replaces or degrades the normal answer of one API request: ``"429"`` (the sandbox's own
too-many-requests answer, with ``Retry-After``), ``"500"`` (its server-error answer), ``"truncated"``
(the 2xx body cut in half) or ``"slow"`` (answered normally after a delay). Three ways to ask for one:

* counters, ``next_429=3``: the next three API requests;
* a positional window, ``fail_at=5, fail_count=2, fail_with="429"``: the 5th and 6th API request
  counted from when the config was set (what retry tests of a multi-call job need);
* rates, ``rate_500=0.1``: drawn from ``random.Random(seed)``, so a request sequence meets the same faults.
"""

from dataclasses import asdict, dataclass, fields
from typing import Any

#: Fault names in priority order (the first counter or rate that fires wins).
FAULTS = ("429", "500", "truncated", "slow")

_COUNTS = ("next_429", "next_500", "next_truncated", "next_slow", "fail_at")
_RATES = tuple(f"rate_{name}" for name in FAULTS)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass
class FaultConfig:
    """Faults a sandbox injects into API requests (admin routes are never faulted).

    Precedence for one request: counters (429, 500, truncated, slow), then the ``fail_at`` window, then
    rates in the same order; at most one fault per request. Every in-scope request takes four rate draws
    whether or not a counter fired, so the draws stay aligned with the request sequence.

    Attributes:
        next_429: Next N API requests answer 429.
        next_500: Next N API requests answer 500.
        next_truncated: Next N API requests answer their 2xx body cut in half.
        next_slow: Next N API requests are delayed by ``slow_seconds``.
        fail_at: 1-based number of the first API request of the window (counted since the config was
            set, in-scope requests only); 0 disables the window.
        fail_count: Length of the window: ``fail_at=4, fail_count=3`` faults requests 4, 5 and 6.
        fail_with: The fault of the window, one of :data:`FAULTS`.
        rate_429: Probability of a 429 per request.
        rate_500: Probability of a 500 per request.
        rate_truncated: Probability of a truncated body per request.
        rate_slow: Probability of a delay per request.
        retry_after: ``Retry-After`` seconds sent with an injected 429; None sends no header.
        slow_seconds: Delay of a slow answer.
        seed: Seed of the rate draws.
        routes: Route names (as the sandbox labels them in stats) the faults apply to; None means all.
            Requests to other routes are neither faulted nor counted by ``fail_at``.
    """

    next_429: int = 0
    next_500: int = 0
    next_truncated: int = 0
    next_slow: int = 0
    fail_at: int = 0
    fail_count: int = 1
    fail_with: str = "500"
    rate_429: float = 0.0
    rate_500: float = 0.0
    rate_truncated: float = 0.0
    rate_slow: float = 0.0
    retry_after: int | None = 1
    slow_seconds: float = 2.0
    seed: int = 0
    routes: list[str] | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FaultConfig":
        """Build a config from a JSON object; missing fields take their defaults.

        Args:
            data: Field name → value.

        Returns:
            The validated config.

        Raises:
            ValueError: Not an object, unknown field, or a field :meth:`validate` rejects.
        """
        if not isinstance(data, dict):
            raise ValueError("fault config must be a JSON object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault fields: {unknown}; known: {sorted(known)}")
        config = cls(**data)
        config.validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        """Return the config as a JSON-ready dict (what ``GET /__sandbox/faults`` answers)."""
        return asdict(self)

    def copy(self) -> "FaultConfig":
        """Return an independent copy (counters and ``routes`` are not shared)."""
        return FaultConfig(**self.to_dict())

    def validate(self) -> None:
        """Check types and ranges.

        Raises:
            ValueError: On the first invalid field.
        """
        for name in _COUNTS:
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
        if not _is_int(self.fail_count) or self.fail_count < 1:
            raise ValueError(f"fail_count must be a positive integer, got {self.fail_count!r}")
        if self.fail_with not in FAULTS:
            raise ValueError(f"fail_with must be one of {list(FAULTS)}, got {self.fail_with!r}")
        for name in _RATES:
            value = getattr(self, name)
            if not _is_number(value) or not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")
        if self.retry_after is not None and (not _is_int(self.retry_after) or self.retry_after < 0):
            raise ValueError(f"retry_after must be a non-negative integer or null, got {self.retry_after!r}")
        if not _is_number(self.slow_seconds) or self.slow_seconds < 0:
            raise ValueError(f"slow_seconds must be a non-negative number, got {self.slow_seconds!r}")
        if not _is_int(self.seed):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.routes is not None and (
            not isinstance(self.routes, list) or not all(isinstance(r, str) for r in self.routes)
        ):
            raise ValueError(f"routes must be a list of route names or null, got {self.routes!r}")
