"""uvicorn in a background thread of `gateway run`; the main thread keeps the signals."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import uvicorn

from gateway.web.api import create_app

if TYPE_CHECKING:
    from gateway.app import Gateway


class Server:
    def __init__(self, server: uvicorn.Server, thread: threading.Thread) -> None:
        self.server = server
        self.thread = thread

    @property
    def port(self) -> int:
        sockets = [s for srv in (self.server.servers or []) for s in srv.sockets]
        return int(sockets[0].getsockname()[1]) if sockets else 0

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def start_server(gateway: Gateway, host: str, port: int) -> Server:
    config = uvicorn.Config(create_app(gateway), host=host, port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)  # outside the main thread uvicorn leaves signals alone
    thread = threading.Thread(target=server.run, name="http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the HTTP server did not start on {host}:{port}")
        time.sleep(0.02)
    return Server(server, thread)
