"""OPTIONS: the methods a path allows, in `Allow`, as a 204 with no body.

Flask answers OPTIONS by itself with `Allow` and an empty 200 typed text/html; a 204 says "no body"
without naming a media type the service never serves. Replacing the app's default OPTIONS response
(rather than an after_request hook) costs the other requests nothing.
"""

from flask import Flask, Response


def register(app: Flask) -> None:
    flask_default = app.make_default_options_response

    def no_content_with_allow() -> Response:
        response = flask_default()
        response.status_code = 204
        response.set_data(b"")
        del response.headers["Content-Type"]
        del response.headers["Content-Length"]
        return response

    app.make_default_options_response = no_content_with_allow
