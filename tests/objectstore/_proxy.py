"""A TCP proxy on 127.0.0.1 that slows or stalls the S3 server behind it (fault tests)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

__all__ = ["SlowProxy"]


class SlowProxy:
    """Forwards every connection to ``upstream``; each chunk waits ``delay`` seconds,
    and while ``stalled`` nothing is forwarded at all (a server that stopped answering)."""

    def __init__(self, upstream_port: int, *, delay: float = 0.0) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.delay = delay
        self.stalled = False
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while not self._closed:
                data = source.recv(65536)
                if not data:
                    break
                while self.stalled and not self._closed:
                    time.sleep(0.01)
                if self.delay:
                    time.sleep(self.delay)
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._closed = True
        self._server.close()
