"""GET /assets/NAME: the files the pages load, each a named route with its own media type, none from
another site; and the headers every page and asset carries.

Swagger UI's files come from the installed `flask_swagger_ui` package (its `dist/`, the Swagger UI
release it pins); the others are this service's own, in service/http/assets/. A file is read once
per worker and answered from memory with a strong ETag, so a browser's revalidation is a 304 with no
body. The pages link each asset with `?v=` and the first characters of its digest, so that a new
version is fetched anew however long the old one is cached.
"""

import functools
import hashlib
import importlib.resources
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, current_app, request

bp = Blueprint("assets", __name__)

OWN = Path(__file__).resolve().parent.parent / "assets"
SWAGGER_UI = importlib.resources.files("flask_swagger_ui") / "dist"

#: Only this origin, for scripts, styles, images, fonts and the API calls; no frames, no inline code.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: Swagger UI's stylesheet draws its icons as `data:` SVG images (they make no request): /docs allows those too.
DOCS_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace("img-src 'self'", "img-src 'self' data:")
ASSET_MAX_AGE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Asset:
    source: object  # a Path, or a Traversable of an installed package
    media_type: str
    about: str

    @functools.cached_property
    def content(self) -> bytes:
        return self.source.read_bytes()

    @functools.cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


ASSETS: dict[str, Asset] = {
    "site.css": Asset(OWN / "site.css", "text/css", "The pages' stylesheet."),
    "playground.js": Asset(OWN / "playground.js", "text/javascript", "The playground's script."),
    "origin.js": Asset(OWN / "origin.js", "text/javascript", "Writes this address into a page's curl commands."),
    "docs.js": Asset(OWN / "docs.js", "text/javascript", "Starts Swagger UI on /docs."),
    "favicon.svg": Asset(OWN / "favicon.svg", "image/svg+xml", "The pages' icon."),
    "swagger-ui.css": Asset(SWAGGER_UI / "swagger-ui.css", "text/css", "Swagger UI's stylesheet."),
    "swagger-ui-bundle.js": Asset(SWAGGER_UI / "swagger-ui-bundle.js", "text/javascript", "Swagger UI."),
}


def asset_url(name: str) -> str:
    """The asset's path, with a version that changes with its content."""
    return f"/assets/{name}?v={ASSETS[name].digest[:12]}"


def with_page_headers(response: Response, policy: str = CONTENT_SECURITY_POLICY) -> Response:
    """The headers of every page and asset: what the browser may load, no sniffing, no referrer."""
    response.headers["Content-Security-Policy"] = policy
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def asset_view(name: str):
    """The view of one asset: 200 with the file, or 304 when the browser's copy is this one."""
    asset = ASSETS[name]

    def serve_asset() -> Response:
        response = current_app.response_class(asset.content, mimetype=asset.media_type)
        response.set_etag(asset.digest)
        response.cache_control.public = True
        response.cache_control.max_age = ASSET_MAX_AGE_SECONDS
        return with_page_headers(response.make_conditional(request))

    return serve_asset


for _name in ASSETS:
    bp.add_url_rule(f"/assets/{_name}", "asset_" + _name.replace(".", "_"), asset_view(_name), methods=["GET"])
