"""What only a running server needs: settings, the memory budget and the deadline, the GC pause, the
gunicorn worker and its lifecycle, the request log and the metrics. The app factory
(service.http.app) is the one place the web layer reaches into it."""
