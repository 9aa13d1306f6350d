"""Per-client request-rate limits a sandbox enforces the way the real API does: by answering 429.

One bucket per client (an integration, a webhook, an API key — the sandbox decides what a client is):
``burst`` requests may arrive at once, then slots come back at ``per_second``. This is both a token
bucket and Bitrix24's "leaky bucket" (counter +1 per request, drained at ``per_second``, refused above
``burst``), so e.g. amoCRM's 7 requests/s per integration is ``RateLimiter(7)`` and Bitrix24's
50-burst / 2-per-second bucket is ``RateLimiter(2, burst=50)``.
"""

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """Token buckets keyed by client, refilled continuously (thread-safe)."""

    def __init__(
        self, per_second: float, *, burst: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Create the limiter; every client starts with a full bucket.

        Args:
            per_second: Sustained requests per second per client.
            burst: Requests a client may send at once; defaults to ``per_second`` (at least 1).
            clock: Monotonic seconds; tests pass a fake one to count exactly.

        Raises:
            ValueError: If ``per_second`` or ``burst`` is not positive.
        """
        capacity = burst if burst is not None else max(per_second, 1.0)
        if per_second <= 0 or capacity <= 0:
            raise ValueError(f"per_second and burst must be positive, got {per_second!r} and {burst!r}")
        self.per_second = float(per_second)
        self.burst = float(capacity)
        self._clock = clock
        self._lock = threading.Lock()
        # client → (tokens left, clock reading of that count)
        self._buckets: dict[str, tuple[float, float]] = {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(per_second={self.per_second:g}, burst={self.burst:g})"

    def acquire(self, client: str) -> float | None:
        """Take one request slot for ``client``.

        Args:
            client: Whatever identifies the caller to the real API's limit.

        Returns:
            None if the request is allowed; otherwise the seconds until a slot frees (for ``Retry-After``).
        """
        with self._lock:
            now = self._clock()
            tokens, since = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - since) * self.per_second)
            if tokens >= 1.0:
                self._buckets[client] = (tokens - 1.0, now)
                return None
            self._buckets[client] = (tokens, now)
            return (1.0 - tokens) / self.per_second

    def reset(self) -> None:
        """Give every client a full bucket again."""
        with self._lock:
            self._buckets.clear()
