"""A TCP proxy in the test process, between an agent and the coordinator.

It counts the bytes each way, can slow the coordinator-to-agent direction (to catch an agent in
the middle of a download) and can cut every open connection with a TCP reset (to break a stream
in the middle of an upload).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from typing import List, Optional


class Proxy:
    def __init__(self, target_port: int, down_bytes_per_s: Optional[float] = None) -> None:
        self.target_port = target_port
        self.down_bytes_per_s = down_bytes_per_s
        self.up_bytes = 0
        self.down_bytes = 0
        self.cuts = 0
        self._conns: List[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = int(self._listener.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while True:
                rate = None if up else self.down_bytes_per_s
                data = src.recv(1024 if rate else 65536)
                if not data:
                    break
                if rate:
                    time.sleep(len(data) / rate)
                dst.sendall(data)
                with self._lock:
                    if up:
                        self.up_bytes += len(data)
                    else:
                        self.down_bytes += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Reset every open connection (RST, as a dropped Wi-Fi link or a NAT timeout)."""
        with self._lock:
            conns, self._conns = self._conns, []
            self.cuts += 1
        for s in conns:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()
            except OSError:
                pass

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut()
