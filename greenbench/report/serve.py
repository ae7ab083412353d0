"""`greenbench report --serve`: the written page over HTTP, and nothing else.

Only the page is served, at / and at /NAME: no other file of its folder (.git, .venv, results),
no listing, no symlink. A request whose Host header names another host is refused, so a web
page elsewhere cannot read the report through a DNS name it rebinds to 127.0.0.1. The loopback
interface is the default; bound to all interfaces (--host 0.0.0.0), an IP address as Host is
accepted too, since only a name can be rebound.
"""

from __future__ import annotations

import errno
import http.server
import ipaddress
import socket
import urllib.parse
from http import HTTPStatus
from pathlib import Path

from greenbench.errors import GreenbenchError

DEFAULT_HOST = "127.0.0.1"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::"})


class ReportServer(http.server.ThreadingHTTPServer):
    """Serves one page file; knows which Host headers name it."""

    daemon_threads = True

    def __init__(self, page: Path, host: str, port: int) -> None:
        self.page = page
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), ReportHandler)
        self.bound_host = host.strip("[]").lower()
        self.routes = frozenset({"/", "/" + page.name})

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def host_allowed(self, header: str | None) -> bool:
        """Whether a Host header (or an absolute URL's authority) names this server."""
        if not header:
            return False
        try:
            parts = urllib.parse.urlsplit("//" + header)
            name, port = parts.hostname or "", parts.port or 80
        except ValueError:
            return False
        if port != self.port:
            return False
        if name in LOOPBACK_NAMES or name == self.bound_host:
            return True
        return self.bound_host in WILDCARD_HOSTS and _is_ip(name)


class ReportHandler(http.server.BaseHTTPRequestHandler):
    """GET and HEAD of the page; 403 for a foreign Host, 404 for any other path."""

    server: ReportServer
    server_version = "greenbench"
    sys_version = ""
    timeout = 30  # a client that stops sending frees its thread

    def do_GET(self) -> None:
        self._reply(with_body=True)

    def do_HEAD(self) -> None:
        self._reply(with_body=False)

    def _reply(self, with_body: bool) -> None:
        target = urllib.parse.urlsplit(self.path)
        authority = target.netloc or self.headers.get("Host")
        if not self.server.host_allowed(authority):
            self.send_error(HTTPStatus.FORBIDDEN, "this server answers only to its own address")
            return
        if urllib.parse.unquote(target.path) not in self.server.routes:
            self.send_error(HTTPStatus.NOT_FOUND, "only the report is served here")
            return
        try:
            body = self.server.page.read_bytes()
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "the report file is gone")
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", "frame-ancestors 'none'")
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # nothing on the terminal per request


def make_server(page: Path, host: str = DEFAULT_HOST, port: int = 8000) -> ReportServer:
    """A server for `page` alone; port 0 picks a free port. GreenbenchError naming the flag."""
    if not 0 <= port <= 65535:
        raise GreenbenchError(f"--port {port}: not a port; give 1 to 65535 (0 picks a free one)")
    try:
        return ReportServer(page.resolve(), host, port)
    except (OSError, ValueError) as e:  # ValueError: a host name IDNA cannot encode
        raise GreenbenchError(_bind_error(e, host, port)) from None


def _bind_error(e: OSError | ValueError, host: str, port: int) -> str:
    code = getattr(e, "errno", None)
    reason = getattr(e, "strerror", None) or str(e)
    if isinstance(e, socket.gaierror | ValueError) or code == errno.EADDRNOTAVAIL:
        return f"--host {host}: not an address of this machine ({reason}); the default is 127.0.0.1"
    if code == errno.EADDRINUSE:
        return f"--port {port}: already in use on {host}; pick another (--port 0 picks a free one)"
    if code == errno.EACCES:
        return f"--port {port}: not allowed ({reason}); use a port above 1023"
    return f"cannot serve on {host}:{port} ({reason}); check --host and --port"


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
