"""Which failed requests may be sent again, and how a failure reads in one line.

A request may be sent again only when no byte of its answer arrived: the connection was refused, the
connect timed out, or the connection was closed or reset before the status line. Once the answer has
begun (a head too long to read, a connection cut mid-answer), the service has done the work and will
do it again the same way: sending the request again costs the service as much for nothing.

`requests` reports a reset before the status line and a reset after it alike (a ConnectionError
around a ConnectionResetError). `AnswerAwareAdapter` tells them apart where it is known: its
responses wait for the answer's first byte before reading the status line, and a connection that
ends or is reset while waiting becomes http.client's RemoteDisconnected ("closed connection without
response"), which is raised for nothing else.
"""

import http.client
import os
import socket
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError


class _AnswerAwareResponse(http.client.HTTPResponse):
    def begin(self) -> None:
        if self.headers is None:  # not begun yet: nothing of the answer has been read
            try:
                self.fp.peek(1)
            except ConnectionError as error:
                raise http.client.RemoteDisconnected(
                    f"The connection was reset before any answer ({error})."
                ) from error
        super().begin()


class _Connection(HTTPConnection):
    response_class = _AnswerAwareResponse


class _SecureConnection(HTTPSConnection):
    response_class = _AnswerAwareResponse


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _SecurePool(HTTPSConnectionPool):
    ConnectionCls = _SecureConnection


_POOLS = {"http": _Pool, "https": _SecurePool}


class AnswerAwareAdapter(HTTPAdapter):
    """requests' HTTPAdapter whose connections say whether a failure came before the answer's first byte."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """requests' pool manager, its connections this module's."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        """requests' manager for a proxy, its connections this module's."""
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager


def nothing_arrived(error: requests.RequestException) -> bool:
    """True when `error` came before any byte of the answer: refused, connect timeout, closed or reset
    before the status line. Such a request may be sent again; any other may not."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    if not isinstance(error, requests.ConnectionError) or not error.args:
        return False
    reason = error.args[0]
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    if isinstance(reason, NewConnectionError):
        return True
    return (
        isinstance(reason, ProtocolError)
        and len(reason.args) > 1
        and isinstance(reason.args[1], http.client.RemoteDisconnected)
    )


def describe(error: requests.RequestException, timeout: float | None = None) -> str:
    """Why a request failed, in a few words: "connection refused", "no answer within 60 s", ..."""
    if isinstance(error, requests.ConnectTimeout):
        return "no connection within the timeout" if timeout is None else f"no connection within {timeout:g} s"
    if isinstance(error, requests.ReadTimeout):
        return "no answer within the timeout" if timeout is None else f"no answer within {timeout:g} s"
    cause = _innermost(error)
    if isinstance(cause, socket.gaierror):
        return f"the host name cannot be resolved ({cause.strerror or cause})"
    if isinstance(cause, http.client.RemoteDisconnected):
        return "the connection was closed before any answer"
    if isinstance(cause, http.client.BadStatusLine):
        return f"its status line cannot be read ({cause.line!r})"
    if isinstance(cause, http.client.LineTooLong):
        return f"its answer's head cannot be read ({cause})"
    if isinstance(cause, http.client.IncompleteRead):
        received = cause.partial if isinstance(cause.partial, int) else len(cause.partial)  # urllib3's is a count
        return f"its answer was cut off after {received} bytes of the body"
    if isinstance(cause, OSError) and cause.errno is not None:
        words = os.strerror(cause.errno)
        return words[:1].lower() + words[1:]
    return str(cause) or type(cause).__name__


def _innermost(error: BaseException) -> BaseException:
    """The exception at the bottom of requests' and urllib3's wrappers."""
    seen = set()
    while id(error) not in seen:
        seen.add(id(error))
        inner = getattr(error, "reason", None) if isinstance(error, MaxRetryError) else None
        if inner is None and isinstance(error, ProtocolError) and len(error.args) > 1:
            inner = error.args[1]
        if inner is None and isinstance(error, requests.RequestException) and error.args:
            inner = error.args[0]
        if inner is None:
            inner = error.__cause__ or error.__context__
        if not isinstance(inner, BaseException):
            return error
        error = inner
    return error
