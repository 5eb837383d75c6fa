"""The worker process's life as the app sees it: whether it has been told to stop.

The gunicorn worker (service/worker.py) sets `stopping` when it receives SIGTERM; /readyz then answers
503, so a load balancer that still reaches this process takes it out of rotation while in-flight
requests finish.
"""

import threading

stopping = threading.Event()
