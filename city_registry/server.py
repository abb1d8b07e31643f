"""The zero-setup HTTP front of the reference city registry: the stdlib ThreadingHTTPServer, HTTP/1.1
keep-alive, one process. ``city_registry.wsgi`` is the other front, for gunicorn with several processes.
"""

from __future__ import annotations

import contextlib
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from city_registry.app import RegistryApp, Reply, header_name
from city_registry.store import RegistryStore

log = logging.getLogger("city_registry")

class RegistryServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], store: RegistryStore, key: str,
                 enable_faults: bool = False) -> None:
        super().__init__(address, Handler)
        self.app = RegistryApp(store, key, enable_faults)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Answers go out as one write with TCP_NODELAY: a separate small write after the headers waited
    # for the client's delayed ACK (Nagle), about 40 ms per batch on loopback.
    disable_nagle_algorithm = True
    server: RegistryServer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        headers = {header_name(k): v for k, v in self.headers.items()}
        reply = self.server.app.handle(
            self.command, self.path, headers, headers.get("Content-Length"), self.rfile.read
        )
        if reply.drop:
            self.close_connection = True
            return
        if reply.close:
            self.close_connection = True
        with contextlib.suppress(OSError):
            self._send(reply)

    def _send(self, reply: Reply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(reply.body)))
        for k, v in reply.headers.items():
            self.send_header(k, v)
        buffered = getattr(self, "_headers_buffer", None)  # absent for an HTTP/0.9 request
        if buffered is None:
            self.wfile.write(reply.body)
            return
        buffered.extend((b"\r\n", reply.body))  # end_headers() without its flush: one write below
        self.flush_headers()


def serve(host: str, port: int, database_url: str, key: str, enable_faults: bool = False) -> None:
    store = RegistryStore(database_url)
    server = RegistryServer((host, port), store, key, enable_faults)
    print(f"city registry listening on http://{host}:{server.server_address[1]} "
          f"(database {store.engine.url.render_as_string(hide_password=True)}, "
          f"faults {'on' if enable_faults else 'off'})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
