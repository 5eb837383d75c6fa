"""gunicorn settings for valuegraph, the same for `make run`, the tests, the benchmark and the image.

Every setting can be changed from the environment; README's Configuration lists them.
"""
import os

wsgi_app = "service:create_app()"

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"

# Evaluation is CPU-bound Python, so one worker process per core; threads only let a worker hold
# several keep-alive connections while it computes for one of them.
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 1))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))

# A 1,000,000-node graph takes several seconds; a worker silent for longer than this is restarted.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
