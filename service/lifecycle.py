"""What the gunicorn worker (service/worker.py) tells the app: that it has been told to stop, and that a
client is too slow.

The worker sets `stopping` when it receives SIGTERM; /readyz then answers 503, so a load balancer that
still reaches this process takes it out of rotation while in-flight requests finish. Its sockets raise
`ClientTooSlow`, which reading the body (service/body.py) answers 408. This module imports nothing of
the app, so that gunicorn's master, which loads the worker class, loads none of the app either (the
metrics above all: made in the master, they would count it as a worker).
"""

import threading

stopping = threading.Event()


class ClientTooSlow(Exception):
    """The client sent its request, or read its answer, slower than the server allows."""
