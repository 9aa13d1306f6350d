"""Masking of secrets and personal data in anything the HTTP layer writes: messages, logs, reprs.

A :class:`Redactor` knows the secrets of one auth object (API key, tokens, the token inside a webhook URL)
and masks them wherever they occur, raw or URL-encoded. It also masks personal data that reaches URLs and
error bodies: 12-digit IIN-like runs, e-mail addresses and phone numbers. It is deliberately eager (a
12-digit order number is masked too): a log line that hides an id costs less than one that leaks a person.
"""

import logging
import re
import threading
import weakref
from collections.abc import Callable, Iterable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

MASK = "***"
# Libraries under the client that log request lines (URLs with webhook tokens and query values) at DEBUG.
THIRD_PARTY_LOGGERS = ("urllib3.connectionpool",)
# Secrets at least this long are masked wherever they occur; shorter ones (test keys like "k") only as a
# whole token, else every "k" of every message would be starred out.
_MIN_SUBSTRING_SECRET = 6
_TOKEN_CHARS = r"A-Za-z0-9._~-"  # URL-unreserved: "/", "=", "&" and spaces end a token

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+(?:@|%40)([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})")
_IIN = re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])")
_PHONE = re.compile(
    # International form: "+", then 9..15 digits with at most two separators between digits.
    r"\+[0-9](?:[\s().-]{0,2}[0-9]){8,14}(?![0-9])"
    # Kazakh/Russian domestic form: 11 digits starting with 8 or 7, e.g. 8 (701) 123-45-67, 77011234567.
    r"|(?<![\w+])[78][\s(-]{0,2}[0-9]{3}[\s)-]{0,2}[0-9]{3}[\s-]?[0-9]{2}[\s-]?[0-9]{2}(?![0-9])"
)


def mask_iin_like(digits: str) -> str:
    """Mask a 12-digit run the way IINs are masked across the platform.

    Args:
        digits: Twelve digits.

    Returns:
        The 4 leading and 2 trailing digits around six stars, e.g. ``"6507******49"``.
    """
    return digits[:4] + "*" * (len(digits) - 6) + digits[-2:]


def _mask_phone(match: re.Match[str]) -> str:
    digits = re.sub(r"[^0-9]", "", match.group())
    return MASK + digits[-2:]


def redact_pii(text: str) -> str:
    """Mask e-mail addresses, IIN-like 12-digit runs and phone numbers.

    Args:
        text: Any text.

    Returns:
        The text with ``***@domain``, ``6507******49`` and ``***67`` in place of the personal data.
    """
    text = _EMAIL.sub(lambda match: f"{MASK}@{match.group(1)}", text)
    text = _IIN.sub(lambda match: mask_iin_like(match.group()), text)
    return _PHONE.sub(_mask_phone, text)


def display_url(url: str) -> str:
    """Decode a prepared URL for humans: percent-escapes resolved so the redactor can see the values.

    Args:
        url: An encoded URL, as sent.

    Returns:
        The same URL with the path unquoted and the query unquoted as form data; not meant to be re-sent.
    """
    base, sep, query = url.partition("?")
    return unquote(base) + sep + unquote_plus(query)


class Redactor:
    """Masks known secrets, then personal data, in a text.

    Example:
        >>> redact = Redactor(["s3cr3t-api-key"])
        >>> redact("GET https://x/?key=s3cr3t-api-key&mail=ann@example.kz")
        'GET https://x/?key=***&mail=***@example.kz'
    """

    def __init__(self, secrets: Callable[[], Iterable[str]] | Iterable[str] = ()) -> None:
        """Create a redactor.

        Args:
            secrets: The secrets to mask, or a callable returning them, asked at every use so rotated
                OAuth tokens are masked as soon as they exist.
        """
        self._secrets = secrets

    def secrets(self) -> list[str]:
        """The secrets currently masked, longest first (so a token containing another is masked whole)."""
        current = self._secrets() if callable(self._secrets) else self._secrets
        forms = set()
        for secret in current:
            if secret:
                forms.update({secret, quote(secret, safe=""), quote_plus(secret)})
        return sorted(forms, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """Return ``text`` with every known secret and every piece of personal data masked."""
        for secret in self.secrets():
            if len(secret) >= _MIN_SUBSTRING_SECRET:
                text = text.replace(secret, MASK)
            else:
                pattern = rf"(?<![{_TOKEN_CHARS}]){re.escape(secret)}(?![{_TOKEN_CHARS}])"
                text = re.sub(pattern, MASK, text)
        return redact_pii(text)

    def url(self, url: str) -> str:
        """Render a URL for a log line or a message: decoded, secrets and personal data masked.

        Args:
            url: The URL as sent (encoded).

        Returns:
            The display form, e.g. ``https://host/rest/1/***/crm.deal.list.json?filter[EMAIL]=***@x.kz``.
        """
        return self(display_url(url))


class _ThirdPartyLogFilter(logging.Filter):
    """Redacts records of libraries under the client with the redactors of every live client."""

    def __init__(self) -> None:
        super().__init__()
        self._redactors: weakref.WeakSet[Redactor] = weakref.WeakSet()

    def add(self, redactor: "Redactor") -> None:
        self._redactors.add(redactor)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        for redactor in list(self._redactors):
            message = redactor(message)
        record.msg, record.args = redact_pii(message), None
        return True


_third_party_filter = _ThirdPartyLogFilter()
_install_lock = threading.Lock()
_installed = False


def redact_third_party_logs(redactor: Redactor) -> None:
    """Make the DEBUG lines of ``urllib3`` pass through ``redactor`` too (for as long as it lives).

    urllib3 logs every request line, query string included, at DEBUG: with a webhook token in the path or
    an e-mail in a filter, turning DEBUG on for a task would otherwise leak them.

    Args:
        redactor: A client's redactor; held weakly, so a closed and dropped client is forgotten.
    """
    global _installed
    with _install_lock:
        if not _installed:
            for name in THIRD_PARTY_LOGGERS:
                logging.getLogger(name).addFilter(_third_party_filter)
            _installed = True
    _third_party_filter.add(redactor)
