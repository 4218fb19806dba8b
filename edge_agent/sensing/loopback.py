"""A TCP sink on loopback: where a dry-run calibration pushes its upload bytes."""

from __future__ import annotations

import socket
import threading


class LoopbackSink:
    """A TCP sink on 127.0.0.1 that discards what it receives (dry-run uplink)."""

    def __init__(self) -> None:
        self._srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._srv.bind(("127.0.0.1", 0))
        self._srv.listen(1)
        self.address = self._srv.getsockname()
        self.received = 0
        self._thread = threading.Thread(target=self._serve, name="loopback-sink", daemon=True)
        self._thread.start()
        self._client = socket.create_connection(self.address)

    def _serve(self) -> None:
        conn, _ = self._srv.accept()
        with conn:
            while True:
                data = conn.recv(1 << 16)
                if not data:
                    return
                self.received += len(data)

    def send(self, data: bytes) -> None:
        self._client.sendall(data)

    def close(self) -> int:
        """Close and wait for the sink; returns the bytes it received."""
        self._client.close()
        self._thread.join()
        self._srv.close()
        return self.received

    def __enter__(self) -> LoopbackSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
