# gunicorn for the co-op Django stand-in: threaded workers (gthread), as real deployments run it.
import os

chdir = "/app"
bind = "0.0.0.0:" + os.environ.get("PORT", "8080")
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# gthread, with new connections waiting in the poller until they carry a request (coopsite/gthread.py):
# idle connections a proxy opened ahead of need must not hold the worker's threads.
worker_class = "coopsite.gthread.ThreadWorker"
keepalive = 2
graceful_timeout = 20
accesslog = None
errorlog = "-"


def post_worker_init(worker):
    # SIGUSR1 prints every thread's stack to the log: how to see where a stuck request waits.
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)


def pre_request(worker, req):
    # A worker that finishes no request for 5 s prints every thread's stack (a stall, and where).
    import faulthandler

    faulthandler.dump_traceback_later(5, exit=False)


def post_request(worker, req, environ, resp):
    import faulthandler

    faulthandler.cancel_dump_traceback_later()
