"""service/runtime/worker.py's paced sockets, on socket pairs (fast)."""

import socket

import pytest

from service.runtime.lifecycle import ClientTooSlow
from service.runtime.worker import PacedSocket, problem_bytes


def paced_pair(grace, min_rate):
    server, client = socket.socketpair()
    paced = PacedSocket(server.family, server.type, server.proto, fileno=server.detach())
    paced.pace(grace, min_rate)
    paced.setblocking(True)
    return paced, client


def test_a_silent_client_is_too_slow_after_the_grace():
    paced, client = paced_pair(0.2, 1000)
    with paced, client:
        paced.begin_request()
        client.sendall(b"GET / HTT")
        assert paced.recv(100) == b"GET / HTT"
        with pytest.raises(ClientTooSlow, match="VALUEGRAPH_CLIENT_GRACE_SECONDS"):
            paced.recv(100)


def test_outside_a_request_the_socket_is_an_ordinary_one():
    paced, client = paced_pair(0.01, 1000)
    with paced, client:
        client.sendall(b"x")
        assert paced.recv(1) == b"x"
        paced.settimeout(0.05)
        with pytest.raises(TimeoutError):
            paced.recv(1)
        assert paced.gettimeout() == 0.05


def test_a_client_that_does_not_read_is_cut_off():
    paced, client = paced_pair(0.2, 10_000_000)
    with paced, client:
        paced.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        paced.begin_request()
        with pytest.raises(BrokenPipeError, match="too slowly"):
            paced.sendall(b"x" * 10_000_000)


def test_a_reading_client_gets_the_whole_answer():
    paced, client = paced_pair(1.0, 1_000_000)
    with paced, client:
        paced.begin_request()
        client.sendall(b"request")
        assert paced.recv(100) == b"request"
        paced.sendall(b"answer")
        assert client.recv(100) == b"answer"


def test_problem_bytes_is_a_whole_answer():
    head, _, body = problem_bytes(431, "Request Header Fields Too Large", "too big").partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"Content-Type: application/problem+json" in head
    assert f"Content-Length: {len(body)}".encode() in head


def test_an_answers_head_leaves_with_its_body_in_one_write():
    paced, client = paced_pair(5, 1000)
    with paced, client:
        client.settimeout(0.2)
        head, body = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", b"{}"
        paced.sendall(head)
        with pytest.raises(TimeoutError):
            client.recv(100)
        paced.sendall(body)
        assert client.recv(100) == head + body


def test_a_head_with_no_body_leaves_when_the_answer_is_done_and_interim_heads_at_once():
    paced, client = paced_pair(5, 1000)
    with paced, client:
        client.settimeout(1)
        paced.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert client.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        head = b"HTTP/1.1 204 No Content\r\nAllow: GET\r\n\r\n"
        paced.sendall(head)
        paced.send_held_head()
        assert client.recv(100) == head
        paced.send_held_head()
        paced.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n")
        paced.sendall(b"x" * 3)
        assert client.recv(100).endswith(b"\r\n\r\nxxx")
