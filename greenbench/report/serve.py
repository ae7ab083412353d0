"""`greenbench report --serve`: the written page over HTTP, on the loopback interface by default."""

from __future__ import annotations

import functools
import http.server
from pathlib import Path

DEFAULT_HOST = "127.0.0.1"


def make_server(page: Path, host: str = DEFAULT_HOST, port: int = 8000) -> http.server.HTTPServer:
    """A server for the folder holding `page`; port 0 picks a free port."""
    handler = functools.partial(QuietHandler, directory=str(page.resolve().parent), page=page.name)
    return http.server.ThreadingHTTPServer((host, port), handler)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the report at / and the folder's files; logs nothing to the terminal."""

    def __init__(self, *args, page: str, **kwargs) -> None:
        self._page = page
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:
        if self.path in ("/", ""):
            self.path = "/" + self._page
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass
