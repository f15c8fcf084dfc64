"""`fourreal view-web DIR`: serve a `fourreal export web` folder on this machine and print its address.

A page that loads modules and data files needs a web server (browsers refuse both from file://). This is Python's
own static server, quiet, bound to localhost unless told otherwise; any static server works as well (`python -m
http.server -d DIR`, a web host).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import tyro
from typing_extensions import Annotated

from fourreal_ns.export.web import SCENE_FILE, WebExportError, is_web_export


class QuietHandler(SimpleHTTPRequestHandler):
    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, ".js": "text/javascript",
                      ".ply": "application/octet-stream", ".bin": "application/octet-stream",
                      ".json": "application/json"}  # fmt: skip

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (the base class's name)
        pass


def start_server(folder: Path, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """Serve `folder` in a background thread (port 0: any free port); stop with `server.shutdown()`."""
    folder = Path(folder)
    if not is_web_export(folder):
        raise WebExportError(f"{folder} is not a `fourreal export web` folder (no {SCENE_FILE} of ours in it): "
                             "make one with `fourreal export web --load-config CFG --output-dir DIR`.")  # fmt: skip
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def address(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    return f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}/"


@dataclass
class ViewWeb:
    """Serve a `fourreal export web` folder and print the address to open in a browser (Ctrl-C stops)."""

    folder: Annotated[Path, tyro.conf.Positional, tyro.conf.arg(metavar="DIR")]
    """The export folder (holding index.html and scene.json)."""
    port: int = 8000
    """Port to listen on (0: any free one)."""
    host: str = "127.0.0.1"
    """Interface to listen on; 0.0.0.0 shares the page with the local network."""

    def main(self) -> None:
        try:
            server = start_server(self.folder, self.host, self.port)
        except WebExportError as error:
            raise SystemExit(f"fourreal view-web: {error}") from None
        except OSError as error:
            raise SystemExit(f"fourreal view-web: cannot listen on {self.host}:{self.port} ({error.strerror}); "
                             "pick another --port.") from None  # fmt: skip
        print(f"Serving {self.folder} at {address(server)}  (Ctrl-C stops)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            print("stopped")
        finally:
            server.shutdown()
