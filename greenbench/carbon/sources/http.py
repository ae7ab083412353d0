"""GET JSON from an intensity API: bounded in time, retried with backoff, credentials kept home.

- Each fetch has an overall deadline: a watchdog shuts its sockets when the time is up, so a
  server that trickles bytes cannot hold it longer (the socket timeout is per read only).
- 429 and 5xx are retried with exponential backoff, or after Retry-After when that is a number of
  seconds or an HTTP date (anything else is ignored), capped at `max_wait_s` and the deadline.
- Redirects are followed, but the caller's headers (they carry the credentials) go only to the
  origin (scheme, host and port) of the URL asked for, never to another one.
- Every failure is a SourceError with a one-line message that names no credential.

The standard library's urllib does this with small handlers; requests, httpx and urllib3's Retry
would not make it shorter: they drop only `Authorization` on a cross-origin redirect (not
`auth-token`), have no overall deadline, and urllib3 raises on a Retry-After it cannot read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import http.client
import json
import re
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from typing import IO, Any

from greenbench.errors import GreenbenchError

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
MAX_BODY_BYTES = 16 * 2**20  # forecasts are kilobytes; more is not an intensity reply
_DELAY_SECONDS = re.compile(r"[0-9]+")


class SourceError(GreenbenchError):
    """One source could not give a usable answer; the message says why, in one line."""


def retry_after(value: str | None, now: float) -> float | None:
    """The seconds a Retry-After header asks to wait (delay-seconds or an HTTP date, RFC 9110);
    None when absent or unreadable, so the caller falls back to its own backoff."""
    text = (value or "").strip()
    if _DELAY_SECONDS.fullmatch(text):
        return float(text)  # a long digit string is inf: the caller caps it
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, when.timestamp() - now)


def safe_url(url: str) -> str:
    """The URL without its query string or user info, which may carry keys."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))


def decode_json(body: bytes, where: str) -> Any:
    """A reply body as JSON; SourceError when it is not."""
    try:
        return json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, too many digits, nesting
        raise SourceError(f"{where} answered with malformed JSON") from None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    try:
        port = parts.port or default
    except ValueError:  # a port that is not a number
        port = -1
    return parts.scheme.lower(), (parts.hostname or "").lower(), port


class _Deadline:
    """Shuts the sockets of one fetch when its time is up; `expired` says that it did."""

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(max(seconds, 0.0), self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            if self.expired:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Wake a read blocked on the socket: shutdown does, close does not (and urllib has already
    closed its own reference while the reply still reads from it)."""
    with contextlib.suppress(OSError):  # already gone
        socket.socket.shutdown(sock, socket.SHUT_RDWR)  # the plain socket's, also under TLS


def _watched(
    base: type[http.client.HTTPConnection], deadline: _Deadline
) -> type[http.client.HTTPConnection]:
    """`base` with its socket under the deadline from when it connects (for TLS: from when the
    handshake is done; until then the per-read timeout bounds each step)."""

    class Watched(base):  # type: ignore[misc, valid-type]
        def connect(self) -> None:
            super().connect()
            deadline.watch(self.sock)

    return Watched


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_watched(http.client.HTTPConnection, self.deadline), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self.deadline = deadline
        self.context = ssl.create_default_context()

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        connection = _watched(http.client.HTTPSConnection, self.deadline)
        return self.do_open(connection, req, context=self.context)


class _CredentialsStayHome(urllib.request.HTTPRedirectHandler):
    """Follows http(s) redirects; the credentials go along only to their own origin."""

    def __init__(self, home: str, credentials: Mapping[str, str]) -> None:
        super().__init__()
        self.home = _origin(home)
        self.credentials = dict(credentials)

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        target = urllib.parse.urljoin(req.full_url, newurl)
        if urllib.parse.urlsplit(target).scheme.lower() not in ("http", "https"):
            raise urllib.error.HTTPError(req.full_url, code, "redirect off http(s)", headers, fp)
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(new.full_url) == self.home:
            for name, value in self.credentials.items():
                new.add_unredirected_header(name, value)
        return new


def _scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())


def _read(reply: http.client.HTTPResponse, where: str) -> bytes:
    """The whole body, one socket read at a time (so the deadline can cut in); cut-off and
    oversized bodies are errors, not JSON to guess at."""
    chunks, size = [], 0
    while chunk := reply.read1(65536):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise SourceError(f"{where} answered with more than {MAX_BODY_BYTES >> 20} MiB")
        chunks.append(chunk)
    if reply.length:  # Content-Length promised more than came
        raise http.client.IncompleteRead(b"".join(chunks), reply.length)
    return b"".join(chunks)


def _fetch_once(
    url: str, headers: Mapping[str, str], timeout_s: float, deadline: _Deadline
) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    for name, value in headers.items():
        request.add_unredirected_header(name, value)  # urllib never forwards these itself
    opener = urllib.request.build_opener(
        _HTTPHandler(deadline), _HTTPSHandler(deadline), _CredentialsStayHome(url, headers)
    )
    with opener.open(request, timeout=timeout_s) as reply:
        return _read(reply, safe_url(url))


def get_json(
    url: str,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 10.0,
    retries: int = 3,
    backoff_s: float = 1.0,
    max_wait_s: float = 30.0,
    deadline_s: float = 60.0,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Any:
    """The decoded JSON body of a GET; SourceError once the retries or `deadline_s` are spent.

    `headers` carry credentials: they are sent to the origin of `url` only.
    """
    where = safe_url(url)
    secrets = [*(headers or {}).values(), url, urllib.parse.urlsplit(url).query]
    nap = sleep or time.sleep  # looked up per call, so tests can stand in for time.sleep
    give_up_at = clock() + deadline_s
    for attempt in range(retries + 1):
        left = give_up_at - clock()
        if left <= 0:
            break
        failure: Exception | None = None
        with _Deadline(left) as deadline:
            try:
                body = _fetch_once(url, headers or {}, min(timeout_s, left), deadline)
            except SourceError:
                raise
            except Exception as e:  # whatever the client raises is a reason, never a crash
                failure = e
        if deadline.expired:
            break  # what came may even look whole: a shut socket reads as the end of a reply
        if failure is None:
            return decode_json(body, where)
        backoff = min(backoff_s * 2**attempt, max_wait_s)
        wait, error = _judge(failure, where, secrets, backoff, max_wait_s)
        if attempt < retries and wait is not None and wait < give_up_at - clock():
            nap(wait)
            continue
        raise error
    raise SourceError(f"{where} gave no complete answer within {deadline_s:g} s")


def _judge(
    e: Exception, where: str, secrets: list[str], backoff: float, max_wait_s: float
) -> tuple[float | None, SourceError]:
    """How long to wait before trying again after `e` (None: do not), and the error if not."""
    if isinstance(e, urllib.error.HTTPError):
        e.close()
        error = SourceError(f"{where} answered HTTP {e.code}{_hint(e.code)}")
        if e.code not in RETRY_STATUSES:
            return None, error
        asked = retry_after(e.headers.get("Retry-After") if e.headers else None, time.time())
        return min(backoff if asked is None else asked, max_wait_s), error
    reason = _scrub(str(getattr(e, "reason", None) or e) or type(e).__name__, secrets)
    if isinstance(e, ValueError | http.client.InvalidURL):  # a base url without http(s)://
        return None, SourceError(f"{where} is not a URL greenbench can fetch ({reason})")
    # timeouts, refusals, resets, cut-off bodies, TLS failures: worth another try
    broken = isinstance(e, http.client.HTTPException)
    what = "sent a broken reply" if broken else "could not be reached"
    return backoff, SourceError(f"{where} {what} ({reason})")


def _hint(code: int) -> str:
    if code in (401, 403):
        return " (check the token)"
    if 300 <= code < 400:
        return " (a redirect greenbench does not follow; check the configured url)"
    return ""
