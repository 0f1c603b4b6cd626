"""A TCP forwarder a test owns in front of a lab service that every test shares.

Closing it refuses new connections and cuts the open ones, which is what a client sees when the service stops. So a
test can take "Prometheus is down" for its own runs only, while tests in other workers keep using the lab's.
"""

from __future__ import annotations

import socket
import threading
import urllib.parse


class TcpForwarder:
    """Forward 127.0.0.1:<port> to the host and port of ``target_url`` until ``close``."""

    def __init__(self, target_url: str) -> None:
        parsed = urllib.parse.urlsplit(target_url)
        self._target = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = "%s://127.0.0.1:%d" % (parsed.scheme, self._listener.getsockname()[1])
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept_forever, daemon=True).start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            open_sockets = list(self._connections) + [self._listener]
            self._connections.clear()
        for sock in open_sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept_forever(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self._target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._closed:
                    client.close()
                    upstream.close()
                    return
                self._connections |= {client, upstream}
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            # One side ended: end the other, so the client sees the connection close as it would with the service.
            with self._lock:
                self._connections -= {source, sink}
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
