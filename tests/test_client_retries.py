"""The client sends a request again only when no byte of its answer arrived: against real sockets on
loopback that misbehave on purpose, one way per test (refuse, time out the connect, close or reset
before the status line; or begin an answer and then break it)."""

import json
import socket
import struct
import threading
import time
from contextlib import contextmanager

import pytest
import requests

import valuegraph
from tools.server import free_port
from valuegraph.transport import describe, nothing_arrived

BODY = json.dumps({"output": "x", "nodes": [{"id": "x", "data": 1.0, "grad": 1}]}).encode()
GRAPH = {"nodes": [{"id": "x", "data": 1.0}]}


def read_request(connection):
    """Read one HTTP request (head and Content-Length body) from the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    while len(body) < length:
        body += connection.recv(65536)


def answer_ok(connection):
    read_request(connection)
    connection.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
        + f"Content-Length: {len(BODY)}\r\n\r\n".encode()
        + BODY
    )
    connection.close()


def close_before_answering(connection):
    read_request(connection)
    connection.close()


def reset(connection):
    """Close with SO_LINGER 0: the peer gets a RST, not a FIN."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()


def reset_before_answering(connection):
    read_request(connection)
    reset(connection)


def reset_after_the_status_line(connection):
    read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\n")
    time.sleep(0.3)
    reset(connection)


def cut_in_the_status_line(connection):
    read_request(connection)
    connection.sendall(b"HTTP/1.1 2")
    connection.close()


def head_too_long(connection):
    """A header line longer than http.client reads (65536 bytes), as a Server-Timing with an entry per item was."""
    read_request(connection)
    connection.sendall(
        b"HTTP/1.1 200 OK\r\nServer-Timing: " + b"item;dur=0.1, " * 6000 + b"\r\nContent-Length: 2\r\n\r\n{}"
    )
    connection.close()


def cut_in_the_body(connection):
    read_request(connection)
    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + BODY[:10])
    time.sleep(0.1)
    connection.close()


def never_answer(connection):
    read_request(connection)
    time.sleep(2)
    connection.close()


@contextmanager
def misbehaving_server(*behaviours):
    """A TCP server on loopback whose n-th connection gets behaviours[n] (the last one repeats); yields
    its URL and the list of connections it accepted."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    accepted, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(None)
            accepted.append(connection)
            behaviour = behaviours[min(len(accepted), len(behaviours)) - 1]
            threading.Thread(target=behaviour, args=(connection,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def client_for(url, **options):
    sleeps = []
    options = {"retries": 3, "backoff": 0.5, "sleep": sleeps.append, "timeout": 5, **options}
    return valuegraph.Client(url, **options), sleeps


@pytest.mark.parametrize("misbehaviour", [close_before_answering, reset_before_answering], ids=["closed", "reset"])
def test_a_connection_lost_before_the_status_line_is_sent_again(misbehaviour):
    with misbehaving_server(misbehaviour, answer_ok) as (url, accepted):
        client, sleeps = client_for(url)
        assert client.evaluate(GRAPH)["output"] == "x"
    assert len(accepted) == 2 and sleeps == [0.5]


def test_a_connection_lost_every_time_is_sent_retries_plus_one_times_then_raised():
    with misbehaving_server(reset_before_answering) as (url, accepted):
        client, sleeps = client_for(url, retries=2)
        with pytest.raises(requests.ConnectionError) as caught:
            client.evaluate(GRAPH)
    assert len(accepted) == 3 and sleeps == [0.5, 1.0]
    assert nothing_arrived(caught.value)
    assert describe(caught.value) == "connection reset by peer"


def test_a_refused_connection_is_sent_again():
    client, sleeps = client_for(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(requests.ConnectionError) as caught:
        client.evaluate(GRAPH)
    assert sleeps == [0.5, 1.0, 2.0]
    assert nothing_arrived(caught.value) and describe(caught.value) == "connection refused"


def test_a_connect_that_times_out_is_sent_again():
    """A listener that accepts nothing, its queue full: the kernel drops further connection requests."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    fillers = []
    try:
        for _ in range(8):  # until a connect would wait
            filler = socket.socket()
            filler.settimeout(0.2)
            try:
                filler.connect(listener.getsockname())
            except TimeoutError:
                filler.close()
                break
            fillers.append(filler)
        else:
            pytest.skip("this kernel queues every connection: no connect timeout can be made on loopback")
        client, sleeps = client_for(url, retries=2, timeout=0.3)
        with pytest.raises(requests.ConnectTimeout) as caught:
            client.evaluate(GRAPH)
        assert sleeps == [0.5, 1.0]
        assert nothing_arrived(caught.value) and describe(caught.value, 0.3) == "no connection within 0.3 s"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


@pytest.mark.parametrize(
    "misbehaviour, error, words",
    [
        (head_too_long, requests.ConnectionError, "its answer's head cannot be read (got more than 65536 bytes"),
        (cut_in_the_status_line, requests.ConnectionError, "its status line cannot be read ('HTTP/1.1 2')"),
        (reset_after_the_status_line, requests.ConnectionError, "connection reset by peer"),
        (cut_in_the_body, requests.RequestException, "its answer was cut off after 10 bytes of the body"),
    ],
    ids=["head too long", "cut in the status line", "reset after the status line", "cut in the body"],
)
def test_an_answer_that_began_to_arrive_is_never_asked_for_again(misbehaviour, error, words):
    with misbehaving_server(misbehaviour, answer_ok) as (url, accepted):
        client, sleeps = client_for(url)
        with pytest.raises(error) as caught:
            client.evaluate(GRAPH)
    assert len(accepted) == 1 and sleeps == []
    assert not nothing_arrived(caught.value)
    assert describe(caught.value).startswith(words)


def test_no_answer_within_the_timeout_is_not_asked_for_again():
    with misbehaving_server(never_answer, answer_ok) as (url, accepted):
        client, sleeps = client_for(url, timeout=0.3)
        with pytest.raises(requests.ReadTimeout) as caught:
            client.evaluate(GRAPH)
    assert len(accepted) == 1 and sleeps == []
    assert describe(caught.value, 0.3) == "no answer within 0.3 s"


def test_a_batch_whose_answer_head_is_too_long_is_sent_once():
    """The issue's case: a grade batch whose answer head `requests` cannot read was sent four times."""
    with misbehaving_server(head_too_long) as (url, accepted):
        client, sleeps = client_for(url)
        with pytest.raises(requests.ConnectionError):
            client.grade_batch([{**GRAPH, "submitted": []}] * 3)
    assert len(accepted) == 1 and sleeps == []
