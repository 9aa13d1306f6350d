"""amoCRM's OAuth 2.0 as the sandbox enforces it: authorization codes, access tokens, rotating refresh tokens.

``POST /oauth2/access_token`` with ``grant_type=authorization_code`` (single-use ``code``) or
``grant_type=refresh_token`` answers ``{"token_type": "Bearer", "expires_in", "access_token",
"refresh_token"}``. A refresh token is single-use: using it issues a new pair and revokes it, while the
access token issued before stays valid until it expires (the real API behaves so: workers sharing one
integration must share token storage). Errors use the real bodies: the OAuth problem JSON
(``type: https://developers.amocrm.ru/v3/errors/OAuthProblemJson``, Russian title and detail, an
English ``hint``), HTTP 400 for a bad request or authorization code and HTTP 401 for a bad client or a
revoked/unknown refresh token (the status league/oauth2-server, which amoCRM runs, gives them; the
"Token has been revoked" body with status 401 is quoted in amocrm/amocrm-api-php#123 and #315).

A configured long-lived token (private integrations, since 2024) is accepted as a bearer too.
"""

import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

OAUTH_PROBLEM_TYPE = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"
ACCESS_TOKEN_TTL = 86_400
REFRESH_TOKEN_TTL = 90 * 86_400
AUTHORIZATION_CODE_TTL = 20 * 60


class OAuthError(Exception):
    """A refused token request: ``status`` and the problem body to answer with."""

    def __init__(self, status: int, hint: str) -> None:
        super().__init__(hint)
        self.status = status
        self.body: dict[str, Any] = {
            "hint": hint,
            "title": "Некорректный запрос",
            "type": OAUTH_PROBLEM_TYPE,
            "status": status,
            "detail": "В запросе отсутствует ряд параметров или параметры невалидны",
        }


@dataclass(frozen=True)
class _Grant:
    expires_at: float
    redirect_uri: str | None = None


class TokenStore:
    """Codes and tokens of one integration (thread-safe).

    Access tokens map to the integration's ``client_id``: the rate limiter keys on it, so every token
    of the integration (and the long-lived one) shares one request budget, as the real limit does.
    """

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        long_lived_token: str | None = None,
        redirect_uri: str | None = None,
        access_token_ttl: float = ACCESS_TOKEN_TTL,
        refresh_token_ttl: float = REFRESH_TOKEN_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Create the store.

        Args:
            client_id: The integration id clients send.
            client_secret: The integration secret.
            long_lived_token: A bearer accepted until the store is dropped (None: none).
            redirect_uri: If set, token requests must send exactly this ``redirect_uri``.
            access_token_ttl: Seconds an access token lives (``expires_in``).
            refresh_token_ttl: Seconds an unused refresh token lives.
            clock: Seconds since the epoch; tests pass a fake one to expire tokens without sleeping.

        Raises:
            ValueError: Empty ``client_id`` or ``client_secret``.
        """
        if not client_id or not client_secret:
            raise ValueError("the sandbox needs a non-empty client_id and client_secret")
        self.client_id = client_id
        self._secret = client_secret
        self.redirect_uri = redirect_uri
        self.access_token_ttl = access_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._codes: dict[str, _Grant] = {}
        self._access: dict[str, float] = {}
        self._refresh: dict[str, float] = {}
        self._revoked: set[str] = set()
        self._long_lived = long_lived_token

    def __repr__(self) -> str:
        return f"{type(self).__name__}(client_id={self.client_id!r}, access_tokens={len(self._access)})"

    def issue_code(self, redirect_uri: str | None = None) -> str:
        """Issue an authorization code, as the user's consent in the amoCRM UI would.

        Args:
            redirect_uri: The redirect the code was issued for (checked when ``redirect_uri`` is configured).

        Returns:
            A single-use code valid for 20 minutes.
        """
        code = "def50200" + secrets.token_hex(32)
        with self._lock:
            self._codes[code] = _Grant(self._clock() + AUTHORIZATION_CODE_TTL, redirect_uri)
        return code

    def identify(self, bearer: str) -> str | None:
        """The integration a bearer token belongs to, or None if it is unknown or expired."""
        if self._long_lived is not None and secrets.compare_digest(bearer, self._long_lived):
            return self.client_id
        with self._lock:
            expires = self._access.get(bearer)
        if expires is None or self._clock() >= expires:
            return None
        return self.client_id

    def exchange(self, form: Mapping[str, str]) -> dict[str, Any]:
        """Answer one ``POST /oauth2/access_token``.

        Args:
            form: The request's fields (JSON object or form body).

        Returns:
            The token body.

        Raises:
            OAuthError: Missing or wrong fields, bad client, used/unknown/expired code or refresh token.
        """
        grant_type = form.get("grant_type")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise OAuthError(400, "Check the `grant_type` parameter")
        if form.get("client_id") != self.client_id or not secrets.compare_digest(
            str(form.get("client_secret", "")), self._secret
        ):
            raise OAuthError(401, "Client authentication failed")
        redirect = form.get("redirect_uri")
        if not redirect:
            raise OAuthError(400, "Check the `redirect_uri` parameter")
        if self.redirect_uri is not None and redirect != self.redirect_uri:
            raise OAuthError(401, "Client authentication failed")
        with self._lock:
            now = self._clock()
            if grant_type == "authorization_code":
                self._take_code(form.get("code"), now)
            else:
                self._take_refresh_token(form.get("refresh_token"), now)
            access, refresh = secrets.token_urlsafe(48), "def50200" + secrets.token_hex(48)
            self._access[access] = now + self.access_token_ttl
            self._refresh[refresh] = now + self.refresh_token_ttl
        return {
            "token_type": "Bearer",
            "expires_in": int(self.access_token_ttl),
            "access_token": access,
            "refresh_token": refresh,
        }

    def _take_code(self, code: str | None, now: float) -> None:
        if not code:
            raise OAuthError(400, "Check the `code` parameter")
        if code in self._revoked:
            raise OAuthError(400, "Authorization code has been revoked")
        grant = self._codes.pop(code, None)
        if grant is None:
            raise OAuthError(400, "Cannot decrypt the authorization code")
        self._revoked.add(code)
        if now >= grant.expires_at:
            raise OAuthError(400, "Authorization code has expired")

    def _take_refresh_token(self, token: str | None, now: float) -> None:
        if not token:
            raise OAuthError(400, "Check the `refresh_token` parameter")
        if token in self._revoked:
            raise OAuthError(401, "Token has been revoked")
        expires = self._refresh.pop(token, None)
        if expires is None:
            raise OAuthError(401, "Cannot decrypt the refresh token")
        self._revoked.add(token)
        if now >= expires:
            raise OAuthError(401, "Token has expired")
