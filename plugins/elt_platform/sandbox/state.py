"""Mutable state every sandbox shares: the faults in force, their seeded draws and the request counters.

Routes of one app run on the event loop and in its thread pool, and tests read the counters from
their own thread, so every method takes the one lock.
"""

import random
import threading
from collections import Counter
from typing import Any

from elt_platform.sandbox.faults import FAULTS, FaultConfig

#: Name under which stats count requests the rate limiter refused, beside the injected faults.
RATE_LIMITED = "rate_limited"


class SandboxState:
    """Fault config, seeded fault draws and request counters of one sandbox (thread-safe)."""

    def __init__(self, faults: FaultConfig | None = None) -> None:
        """Create the state.

        Args:
            faults: Faults in force at start; None means none.
        """
        self._lock = threading.Lock()
        self._by_status: Counter[str] = Counter()
        self._by_route: Counter[str] = Counter()
        self._by_fault: Counter[str] = Counter()
        self.set_faults(faults)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(faults={self.faults!r})"

    def set_faults(self, faults: FaultConfig | None) -> FaultConfig:
        """Replace the fault config (a copy is kept), re-seed the draws and restart the call count.

        Args:
            faults: The new config; None switches faults off.

        Returns:
            The config now in force.

        Raises:
            ValueError: If the config is invalid.
        """
        config = faults.copy() if faults is not None else FaultConfig()
        config.validate()
        with self._lock:
            self.faults = config
            self._rng = random.Random(config.seed)
            self._calls = 0
        return config

    def draw_fault(self, route: str) -> str | None:
        """Decide and count the fault of one API request (consumes counters and draws; see FaultConfig).

        Args:
            route: The route's name; requests outside ``FaultConfig.routes`` are not faulted or counted.

        Returns:
            One of :data:`~elt_platform.sandbox.faults.FAULTS`, or None.
        """
        with self._lock:
            config = self.faults
            if config.routes is not None and route not in config.routes:
                return None
            self._calls += 1
            draws = [self._rng.random() for _ in FAULTS]
            chosen = self._choose(config, draws)
            if chosen is not None:
                # Counted when decided, not when answered: a slow answer may outlive its client.
                self._by_fault[chosen] += 1
            return chosen

    def _choose(self, config: FaultConfig, draws: list[float]) -> str | None:
        for name in FAULTS:
            counter = f"next_{name}"
            if getattr(config, counter) > 0:
                setattr(config, counter, getattr(config, counter) - 1)
                return name
        if config.fail_at and config.fail_at <= self._calls < config.fail_at + config.fail_count:
            return config.fail_with
        for name, draw in zip(FAULTS, draws, strict=True):
            if draw < getattr(config, f"rate_{name}"):
                return name
        return None

    def count_rate_limited(self) -> None:
        """Count one request the rate limiter refused (under ``faults``, as :data:`RATE_LIMITED`)."""
        with self._lock:
            self._by_fault[RATE_LIMITED] += 1

    def record(self, route: str, status: int) -> None:
        """Count one answered API request.

        Args:
            route: The route's name.
            status: The HTTP status answered.
        """
        with self._lock:
            self._by_status[str(status)] += 1
            self._by_route[route] += 1

    def stats(self) -> dict[str, Any]:
        """Return ``{"requests", "by_status", "by_route", "faults"}`` counts since start or the last reset."""
        with self._lock:
            return {
                "requests": sum(self._by_status.values()),
                "by_status": dict(self._by_status),
                "by_route": dict(self._by_route),
                "faults": dict(self._by_fault),
            }

    def reset_stats(self) -> None:
        """Zero every counter (the fault config and its call count are left alone)."""
        with self._lock:
            self._by_status.clear()
            self._by_route.clear()
            self._by_fault.clear()
