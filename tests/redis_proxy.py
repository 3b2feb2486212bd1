"""A TCP proxy in front of the test Redis that can lose answers or refuse connections.

What a Redis that stops (or a network that breaks) does to a client, on demand: a command
reaches Redis and runs, but its answer never comes back (`lose_answer_to`), or no
connection gets through at all (`down`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from approver.process.embedded_redis import free_port


class RedisProxy:
    """Forwards 127.0.0.1:<port> to a Redis server, with faults on demand."""

    def __init__(self, target_port: int):
        self.port = free_port()
        self.target = ("127.0.0.1", target_port)
        self.refusing = False
        self._lose: bytes | None = None
        self.lost = 0  # answers lost so far
        self._sockets: list[socket.socket] = []
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def lose_answer_to(self, marker: bytes) -> None:
        """The next command whose bytes hold `marker` runs, and its connection then breaks."""
        self._lose = marker

    def down(self) -> None:
        """Break every connection and refuse new ones, as a stopped Redis does."""
        self.refusing = True
        for sock in list(self._sockets):
            _close(sock)

    def up(self) -> None:
        self.refusing = False

    def close(self) -> None:
        self.down()
        _close(self._server)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.refusing:
                _close(client)
                continue
            server = socket.create_connection(self.target)
            self._sockets += [client, server]
            cut = threading.Event()  # set: nothing more goes back to the client
            threading.Thread(target=self._pump, args=(client, server, cut, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, cut, False),
                             daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, cut: threading.Event,
              to_redis: bool) -> None:
        try:
            while data := source.recv(65536):
                lose = to_redis and self._lose is not None and self._lose in data
                if lose:
                    self._lose = None
                    cut.set()
                if not to_redis and cut.is_set():
                    continue  # the answer is lost
                sink.sendall(data)
                if lose:
                    self.lost += 1
                    time.sleep(0.2)  # Redis runs it and answers; then the line goes dead
                    break
        except OSError:
            pass
        _close(source)
        _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
