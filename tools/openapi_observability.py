"""The contract's parts about seeing and guarding the service: X-Request-ID on every operation, Server-Timing
on evaluations, and the optional bearer token (401 where it is needed).

An apispec plugin, so that build_spec adds them to each operation as it is declared, the ones declared
later included.
"""

from apispec import APISpec, BasePlugin

from service.http.auth import is_open

PROBLEM = {"$ref": "#/components/schemas/Problem"}

REQUEST_ID_PARAMETER = {
    "description": "An id for this request, used in the log line, the answer's X-Request-ID and any problem's "
    "`request_id`: kept when it is 1 to 128 of the characters A-Z a-z 0-9 . _ ~ : + / = -, else replaced by a new one.",
    "schema": {"type": "string"},
}
REQUEST_ID_HEADER = {
    "description": "The request's id: the one sent in X-Request-ID when it was acceptable, else a new one.",
    "schema": {"type": "string", "pattern": "^[A-Za-z0-9._~:+/=-]{1,128}$"},
}
SERVER_TIMING_HEADER = {
    "description": "Where the time went, in milliseconds, by phase, in the order they ran: read (receiving "
    "the body), fastpath (the compiled path, on the body's bytes: the whole parse, evaluation and answer of a "
    "graph it takes, and of a batch's items it takes; when it declines, the reference path's phases follow), "
    "parse (the JSON), validate (the contract's checks, and the schemas' explanation of a "
    "schemas' explanation of a refusal), build (the forward pass), backward, grade (comparing a submission), "
    "write (the answer's JSON). A batch sums each phase over its items; a refusal lists the phases it reached.",
    "schema": {"type": "string"},
}
WWW_AUTHENTICATE_HEADER = {
    "description": 'How to authenticate: `Bearer realm="valuegraph"`, with `error="invalid_token"` when the '
    "token sent is not valid.",
    "schema": {"type": "string"},
}
UNAUTHORIZED = (
    "The service was started with bearer tokens (VALUEGRAPH_TOKENS, VALUEGRAPH_TOKENS_FILE) and the request "
    "has no valid `Authorization: Bearer TOKEN`."
)


class ObservabilityPlugin(BasePlugin):
    def init_spec(self, spec: APISpec) -> None:
        spec.components.security_scheme(
            "bearerToken",
            {
                "type": "http",
                "scheme": "bearer",
                "description": "Needed only when the service is started with VALUEGRAPH_TOKENS or "
                "VALUEGRAPH_TOKENS_FILE.",
            },
        )
        spec.components.parameter("RequestId", "header", {"name": "X-Request-ID", **REQUEST_ID_PARAMETER})
        spec.components.header("RequestId", REQUEST_ID_HEADER)
        spec.components.header("ServerTiming", SERVER_TIMING_HEADER)
        spec.components.header("WwwAuthenticate", WWW_AUTHENTICATE_HEADER)

    def operation_helper(self, path: str | None = None, operations: dict | None = None, **kwargs) -> None:
        for operation in (operations or {}).values():
            operation.setdefault("parameters", []).append("RequestId")
            if not is_open(path):
                operation["security"] = [{}, {"bearerToken": []}]
                operation["responses"][401] = {
                    "description": UNAUTHORIZED,
                    "content": {"application/problem+json": {"schema": dict(PROBLEM)}},
                    "headers": {"WWW-Authenticate": "WwwAuthenticate"},
                }
            for response in operation["responses"].values():
                headers = response.setdefault("headers", {})
                headers["X-Request-ID"] = "RequestId"
                if path.startswith("/v1/"):
                    headers["Server-Timing"] = "ServerTiming"
