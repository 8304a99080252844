"""A static file server on 127.0.0.1: the sky viewer's pages need http (browsers load ES modules only over
http), nothing more. scripts/serve.py runs it; the viewer's tests load their pages from it."""
from __future__ import annotations

import errno
import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from util.errors import UserError

HOST = "127.0.0.1"  # this machine only: the pages are for the person at it


class StaticHandler(SimpleHTTPRequestHandler):
    """Files of one folder; JavaScript as a module type, FITS as FITS; requests logged only when asked."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript", ".mjs": "text/javascript",
                      ".fits": "application/fits", ".json": "application/json"}

    def __init__(self, *args, log=None, **kwargs):
        self._log = log
        super().__init__(*args, **kwargs)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's name
        if self._log is not None:
            self._log(format % args)


class QuietServer(ThreadingHTTPServer):
    """A browser that leaves a page drops the tiles it no longer wants: not an error worth a traceback."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


def make_server(folder: str | Path, port: int = 0, log=None) -> ThreadingHTTPServer:
    """A server of `folder` on 127.0.0.1:port (0: any free port), not yet serving."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"{folder}: no such folder to serve")
    handler = functools.partial(StaticHandler, directory=str(root.resolve()), log=log)
    try:
        return QuietServer((HOST, port), handler)
    except OSError as err:
        if err.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {HOST} is in use; give another --port (0 picks a free one)") from None
        raise UserError(f"cannot serve on {HOST}:{port}: {err.strerror}") from None


def start_in_background(folder: str | Path, port: int = 0, log=None) -> tuple[ThreadingHTTPServer, str]:
    """(server, its base URL), serving from a daemon thread until `server.shutdown()`."""
    server = make_server(folder, port, log)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{HOST}:{server.server_port}/"
