"""OPTIONS: the methods a path allows, in `Allow`, as a 204 with no body.

Flask answers OPTIONS by itself with `Allow` and an empty 200 typed text/html; a 204 says "no body"
without naming a media type the service never serves.
"""

from flask import Flask, Response, request


def register(app: Flask) -> None:
    @app.after_request
    def options_without_body(response: Response) -> Response:
        if request.method == "OPTIONS" and response.status_code == 200 and "Allow" in response.headers:
            response.status_code = 204
            response.set_data(b"")
            del response.headers["Content-Type"]
            del response.headers["Content-Length"]
        return response
