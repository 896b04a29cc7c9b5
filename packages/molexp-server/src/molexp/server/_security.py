"""The guard in front of every request: host check, token, and safe response headers.

* Without a token the server answers only requests addressed to a loopback name
  (``127.0.0.1``, ``localhost``, ``[::1]``), which stops DNS-rebinding pages from reading it.
* With a token, every request must carry it: ``Authorization: Bearer <token>``, an
  ``X-Molexp-Token`` header, or the ``molexp_token`` cookie, which ``?token=<token>`` on any page
  sets once (the browser is then redirected to the same URL without the token).
* A request that changes state (``POST``) must come from the server's own pages: an ``Origin``
  header, when sent, must match the request's host.
* Every response carries ``X-Content-Type-Options: nosniff``, a strict Content Security Policy
  (scripts, styles and images from the server itself only), ``X-Frame-Options: DENY`` and
  ``Referrer-Policy: same-origin`` (``no-referrer`` would make browsers send ``Origin: null``).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "molexp_token"
TOKEN_HEADER = b"x-molexp-token"
MIN_TOKEN_LENGTH = 16
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
#: The policy of raw payload responses: nothing runs, even if a browser tried to render it.
PAYLOAD_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a bind address or a Host header's name) is a loopback address."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name part of a Host header (``[::1]:8765`` → ``::1``, ``a:80`` → ``a``)."""
    header = header.strip()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", [])}


def _presented_token(scope: Scope, headers: dict[bytes, bytes]) -> str | None:
    auth = headers.get(b"authorization", b"").decode("latin-1")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    if TOKEN_HEADER in headers:
        return headers[TOKEN_HEADER].decode("latin-1")
    cookie_header = headers.get(b"cookie")
    if cookie_header:
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(cookie_header.decode("latin-1"))
        except Exception:  # a malformed cookie header is no token
            return None
        if COOKIE in cookies:
            return cookies[COOKIE].value
    return None


async def _respond(
    send: Send, status: int, body: bytes, content_type: bytes, extra: list[tuple[bytes, bytes]]
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _wants_html(headers: dict[bytes, bytes], path: str) -> bool:
    return not path.startswith("/api/") and b"text/html" in headers.get(b"accept", b"")


class GuardMiddleware:
    """ASGI middleware enforcing the rules in the module docstring."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        path: str = scope.get("path", "")
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, message = refusal
            await self._deny(send, status, message, headers, path)
            return
        if self.token is not None and await self._token_redirect(scope, send):
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self._security_headers() if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_secured)

    def _refusal(self, scope: Scope, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
        """Why the request is refused (status and message), or None."""
        host = headers.get(b"host", b"").decode("latin-1")
        if self.token is None and not is_loopback(host_name(host)):
            return 400, (
                "this server answers only requests to 127.0.0.1, localhost or [::1]: start it "
                "with a token to serve other host names"
            )
        if self.token is not None and not self._query_token(scope):
            presented = _presented_token(scope, headers)
            if presented is None or not hmac.compare_digest(
                presented.encode("utf-8", "replace"), self.token.encode()
            ):
                return 401, (
                    "this server needs its token: open the URL that `molexp serve` printed "
                    "(it ends in ?token=...), or send the header 'Authorization: Bearer <token>'"
                )
        if scope.get("method") not in ("GET", "HEAD", "OPTIONS"):
            origin = headers.get(b"origin")
            if origin == b"null":
                return (
                    403,
                    "refused: a request that changes state cannot come from an opaque origin",
                )
            if origin is not None:
                netloc = urlsplit(origin.decode("latin-1")).netloc
                if netloc.lower() != host.lower():
                    return 403, (
                        "refused: a request that changes state must come from this server's own "
                        "pages"
                    )
        return None

    def _query_token(self, scope: Scope) -> bool:
        """Whether a GET carries the right ``?token=`` (it is then turned into a cookie)."""
        if self.token is None or scope.get("method") not in ("GET", "HEAD"):
            return False
        query = scope.get("query_string", b"").decode("latin-1")
        given = next((v for k, v in parse_qsl(query, keep_blank_values=True) if k == "token"), None)
        return given is not None and hmac.compare_digest(
            given.encode("utf-8", "replace"), self.token.encode()
        )

    async def _token_redirect(self, scope: Scope, send: Send) -> bool:
        """Answer a GET with the right ``?token=`` by setting the cookie and redirecting to the
        same URL without the token; returns whether it did."""
        if not self._query_token(scope):
            return False
        query = scope.get("query_string", b"").decode("latin-1")
        rest = urlencode(
            [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "token"]
        )
        # One leading slash only: "//host/..." would redirect to another site.
        path = "/" + quote(scope.get("path", ""), safe="/%:@!$&'()*+,;=-._~").lstrip("/")
        location = path + (f"?{rest}" if rest else "")
        cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        extra = [
            (b"location", location.encode("latin-1")),
            (b"set-cookie", cookie.encode("latin-1")),
            *self._security_headers(),
        ]
        await _respond(send, 303, b"", b"text/plain; charset=utf-8", extra)
        return True

    @staticmethod
    def _security_headers() -> list[tuple[bytes, bytes]]:
        return [
            (b"x-content-type-options", b"nosniff"),
            (b"content-security-policy", CSP.encode()),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"same-origin"),
            (b"cache-control", b"no-store"),
        ]

    async def _deny(
        self, send: Send, status: int, message: str, headers: dict[bytes, bytes], path: str
    ) -> None:
        if _wants_html(headers, path):
            body = (
                "<!doctype html><meta charset=utf-8><title>molexp</title>"
                f"<h1>{status}</h1><p>{_escape(message)}</p>"
            ).encode()
            content_type = b"text/html; charset=utf-8"
        else:
            body = json.dumps({"detail": message}).encode()
            content_type = b"application/json"
        extra = self._security_headers()
        if status == 401:
            extra.append((b"www-authenticate", b'Bearer realm="molexp"'))
        await _respond(send, status, body, content_type, extra)


def _escape(text: str) -> str:
    from html import escape

    return escape(text, quote=True)
