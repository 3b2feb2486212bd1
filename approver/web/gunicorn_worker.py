"""gunicorn's threaded worker, with a deadline on each connection a thread serves.

A sync worker reads a request with no time limit: two clients sending their headers a
byte at a time held both processes of a two-worker tier, and /healthz went unanswered for
10 s. Threads keep the tier answering while a few clients dawdle (each holds one thread,
not a process), and the deadline takes the thread back from one that never finishes.
"""

from __future__ import annotations

import contextlib
import socket
import time

from gunicorn.workers.gthread import ThreadWorker

# Every answer of this service is computed in well under a second (Redis calls time out
# after 0.5 s, nothing waits for a decision): a connection still in a thread after this
# long is a client that is not sending its request.
DEADLINE = 10.0


class DeadlineWorker(ThreadWorker):
    """gthread, dropping a connection not served within DEADLINE seconds of reaching a thread."""

    def init_process(self):
        self.deadlines = {}  # connection -> when it is dropped; touched by the main thread only
        super().init_process()

    def enqueue_req(self, conn):
        """Hand a connection to a thread, with its deadline."""
        self.deadlines[conn] = time.monotonic() + DEADLINE
        super().enqueue_req(conn)

    def finish_request(self, conn, fs):
        """The thread is done with the connection: no deadline any more."""
        self.deadlines.pop(conn, None)
        super().finish_request(conn, fs)

    def murder_pending(self):
        """gthread's clean-up of idle connections (each loop), and of those past their deadline.

        Shutting the socket down ends the thread's blocked read at once (gunicorn sees an
        early end of the request), and the thread closes the connection as usual.
        """
        super().murder_pending()
        now = time.monotonic()
        for conn, deadline in list(self.deadlines.items()):
            if deadline < now:
                del self.deadlines[conn]
                with contextlib.suppress(OSError):  # the client went away meanwhile
                    conn.sock.shutdown(socket.SHUT_RDWR)
