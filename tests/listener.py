"""A real TCP listener on loopback for tests: records every connection it accepts, answers one canned reply."""

from __future__ import annotations

import socket
import ssl
import threading
import time


class Listener:
    """Listens on 127.0.0.1 (and on ::1 with the same port where it can) until closed."""

    def __init__(
        self,
        reply: bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nclip",
        tls: ssl.SSLContext | None = None,
    ):
        self.reply, self.tls = reply, tls
        self.requests: list[bytes] = []  # what each accepted connection sent (b"" if nothing)
        self._lock = threading.Lock()
        self._sockets = [socket.create_server(("127.0.0.1", 0))]
        self.port = self._sockets[0].getsockname()[1]
        try:
            self._sockets.append(socket.create_server(("::1", self.port), family=socket.AF_INET6))
        except OSError:  # no IPv6 loopback here: the IPv4 one still catches every mapped spelling
            pass
        self._closed = False
        self._threads = [threading.Thread(target=self._serve, args=(s,), daemon=True) for s in self._sockets]
        for thread in self._threads:
            thread.start()

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self.requests)

    def quiet(self, wait: float = 0.05) -> bool:
        """True if nothing connected, after giving a late connection a moment to show up."""
        time.sleep(wait)
        return self.connections == 0

    def close(self) -> None:
        self._closed = True
        for sock in self._sockets:
            sock.close()

    def _serve(self, server: socket.socket) -> None:
        while not self._closed:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with self._lock:
                self.requests.append(b"")
                index = len(self.requests) - 1
            threading.Thread(target=self._answer, args=(conn, index), daemon=True).start()

    def _answer(self, conn: socket.socket, index: int) -> None:
        try:
            if self.tls:
                conn = self.tls.wrap_socket(conn, server_side=True)
            conn.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                data += chunk
            with self._lock:
                self.requests[index] = data
            conn.sendall(self.reply)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()
