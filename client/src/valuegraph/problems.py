"""A refusal of the service, RFC 9457 problem details, as an exception and in words for a person."""

from typing import Any

import requests


class ProblemError(Exception):
    """The service refused or failed a request (a 4xx or 5xx), with its RFC 9457 problem details."""

    def __init__(self, status: int, title: str, detail: str, errors: list | None = None, body: Any = None):
        self.status, self.title, self.detail = status, title, detail
        self.errors = errors or []
        self.body = body
        self.type = body.get("type", "about:blank") if isinstance(body, dict) else "about:blank"
        super().__init__(self.describe())

    @classmethod
    def from_response(cls, response: requests.Response) -> "ProblemError":
        """The ProblemError of a 4xx or 5xx answer: its problem details, or its status and text when it has none."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            text = response.text.strip()
            return cls(response.status_code, response.reason or "Error", text[:500] or "(no body)", body=body)
        return cls(
            body.get("status", response.status_code),
            body.get("title", response.reason or "Error"),
            body.get("detail", ""),
            body.get("errors"),
            body,
        )

    def describe(self) -> str:
        """The problem for a person: status, title and detail, then one line per error."""
        lines = [f"{self.status} {self.title}: {self.detail}"]
        for error in self.errors:
            lines.append("  - " + _describe_error(error))
        return "\n".join(lines)


def _describe_error(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)
    where = []
    if "node" in error:
        where.append(f"node {error['node']!r}")
    if "index" in error:
        where.append(f"(index {error['index']})")
    if error.get("field") is not None:
        where.append(f"field {error['field']}")
    if "column" in error:
        line = f"line {error['line']}, " if "line" in error else ""
        where.append(f"at {line}column {error['column']} ({error.get('text', '')!r})")
    message = error.get("message", "")
    return f"{' '.join(where)}: {message}" if where else message
