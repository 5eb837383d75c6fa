"""What the gunicorn worker (service/runtime/worker.py) tells the app: that it has been told to stop, and that a
client is too slow.

The worker sets `stopping` when it receives SIGTERM; /readyz then answers 503, so a load balancer that
still reaches this process takes it out of rotation while in-flight requests finish. Its sockets raise
`ClientTooSlow`, which reading the body (service/http/body.py) answers 408. This module imports nothing of
the app, so that gunicorn's master, which loads the worker class, loads none of the app either (the
metrics above all: made in the master, they would count it as a worker).
"""

import threading

stopping = threading.Event()


class ClientTooSlow(TimeoutError):
    """The client sent its request, or read its answer, slower than the server allows: a timeout, which
    the app answers 408 while it reads a body (service/http/body.py) without knowing of this worker."""
