"""A request budget for tests of anything that sends through the shared HTTP layer."""


class CountingBudget:
    """A :class:`~elt_platform.http.limits.Budget` that never waits and counts how often it was charged."""

    def __init__(self) -> None:
        self.calls = 0

    def acquire(self) -> float:
        self.calls += 1
        return 0.0
