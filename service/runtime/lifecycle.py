"""What the gunicorn worker (service/runtime/worker.py) tells the app: that it has been told to stop.

The worker sets `stopping` when it receives SIGTERM; /readyz then answers 503, so a load balancer that
still reaches this process takes it out of rotation while in-flight requests finish. This module imports
nothing of the app, so that gunicorn's master, which loads the worker class, loads none of the app either
(the metrics above all: made in the master, they would count it as a worker).
"""

import threading

stopping = threading.Event()
