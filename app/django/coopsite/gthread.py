"""gunicorn's gthread worker, except that a new connection waits in the worker's poller until its
client sends something, as a kept-alive one does between requests.

gunicorn 20.1 (Debian bookworm's) hands every accepted connection to a thread at once, and the
thread blocks reading it. A proxy in front opens connections ahead of need when responses slow
down (Go's HTTP client, kamal-proxy's, keeps the dials it no longer needs as idle spares); with
four threads, four such idle connections hold a whole worker, and the requests it has accepted
wait until the proxy gives up on them (30 s). Measured here during cutovers: 92 to 288 requests
of 10 cutovers hung 30 s with the stock worker, 0 with this one. gunicorn fixed it in 21.0
(benoitc/gunicorn#2917); the worker below does the same with 20.1's own parts.
"""
import errno
import selectors
from functools import partial

from gunicorn.workers import gthread


class ThreadWorker(gthread.ThreadWorker):
    def accept(self, server, listener):
        try:
            sock, client = listener.accept()
        except OSError as e:
            if e.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        # TConn leaves the socket non-blocking. Queued with the kept-alive connections, it goes to
        # a thread once readable (reuse_connection), or is closed once idle past `keepalive`
        # seconds (murder_keepalived), like any connection waiting for its next request.
        conn = gthread.TConn(self.cfg, sock, client, server)
        conn.set_timeout()
        self.nr_conns += 1
        with self._lock:
            self._keep.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.reuse_connection, conn))
