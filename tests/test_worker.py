"""service/runtime/worker.py's pieces, on socket pairs and bytes (fast): the pace, the loop's socket, the
bodies handed to the app, and the chunked decoder against gunicorn's own reader."""

import io
import socket

import pytest
from gunicorn.http.body import ChunkedReader
from gunicorn.http.errors import ChunkMissingTerminator, InvalidHeader, NoMoreData, ParseException
from gunicorn.http.unreader import IterUnreader
from hypothesis import given, settings
from hypothesis import strategies as st

from service.runtime.chunked import ChunkedBody
from service.runtime.memory import MemoryBudget
from service.runtime.worker import LoopSocket, Pace, ReceivedBody, RefusedBody, problem_bytes
from tests.property import examples


def loop_pair():
    server, client = socket.socketpair()
    loop = LoopSocket(server.family, server.type, server.proto, fileno=server.detach())
    loop.loop_mode()
    return loop, client


# --- the pace ------------------------------------------------------------------------------------------


def test_a_client_has_the_grace_to_start():
    pace = Pace(grace=10, min_rate=1000, now=100.0)
    assert pace.deadline == 110.0


def test_a_client_at_the_minimum_rate_keeps_its_deadline_ahead():
    pace = Pace(grace=10, min_rate=1000, now=0.0)
    for second in range(1, 100):
        pace.moved(1000, now=float(second))
        assert pace.deadline >= second + 10 - 1e-9


def test_a_client_that_stalls_after_moving_much_is_cut_off_within_the_grace():
    """Saved-up credit is capped at the grace: a client that sent a gigabyte fast and then stops still
    has only the grace left."""
    pace = Pace(grace=10, min_rate=1000, now=0.0)
    pace.moved(10**9, now=1.0)
    assert pace.deadline == 11.0


def test_a_client_below_the_minimum_rate_runs_out():
    pace = Pace(grace=10, min_rate=1000, now=0.0)
    second = 0
    while pace.deadline > second:
        second += 1
        pace.moved(500, now=float(second))
    assert second <= 21  # half the rate: the grace is used up at half a second a second


# --- the loop's socket ---------------------------------------------------------------------------------


def test_gunicorns_reads_get_the_handed_bytes_and_never_wait():
    loop, client = loop_pair()
    with loop, client:
        client.sendall(b"not for the parser")
        loop.handed = b"GET / HTTP/1.1\r\n\r\n"
        assert loop.recv(8) + loop.recv(100) == b"GET / HTTP/1.1\r\n\r\n"
        with pytest.raises(BlockingIOError):
            loop.recv(100)


def test_an_answers_head_and_body_leave_in_one_write():
    loop, client = loop_pair()
    with loop, client:
        client.settimeout(1)
        head, body = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", b"{}"
        loop.sendall(head)
        loop.sendall(body)
        loop.setblocking(True)  # what gunicorn asks changes nothing: the loop never waits
        assert loop.outgoing_bytes == len(head + body)
        assert loop.send_outgoing() == len(head + body)
        assert client.recv(100) == head + body
        assert not loop.outgoing and loop.outgoing_bytes == 0


def test_a_client_that_does_not_read_keeps_the_rest_waiting_without_blocking():
    loop, client = loop_pair()
    with loop, client:
        loop.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        answer = bytes(range(256)) * 40_000
        loop.sendall(answer)
        sent = loop.send_outgoing()
        assert 0 < sent < len(answer)
        assert loop.send_outgoing() == 0
        assert loop.outgoing_bytes == len(answer) - sent
        received = b""
        while len(received) < sent:
            received += client.recv(1 << 20)
        while loop.outgoing:
            loop.send_outgoing()
            received += client.recv(1 << 20)
        while len(received) < len(answer):
            received += client.recv(1 << 20)
        assert received == answer


def test_problem_bytes_is_a_whole_answer():
    head, _, body = problem_bytes(431, "Request Header Fields Too Large", "too big").partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert b"Connection: close" in head
    assert b"Content-Type: application/problem+json" in head
    assert f"Content-Length: {len(body)}".encode() in head


# --- the bodies the app reads --------------------------------------------------------------------------


def test_a_received_body_reads_as_a_stream():
    body = ReceivedBody(bytearray(b"first line\nsecond\nthird"))
    assert body.read(3) == b"fir"
    assert body.readline() == b"st line\n"
    assert body.readline(3) == b"sec"
    assert list(body) == [b"ond\n", b"third"]
    assert body.read() == b"" and body.readline() == b""


def test_a_received_body_read_whole_is_handed_over_without_a_copy_of_bytes():
    data = b"x" * 1000
    body = ReceivedBody(data)
    assert body.read(10**9) is data
    assert body.read() == b""


def test_a_refused_body_raises_what_the_app_answers():
    body = RefusedBody(NoMoreData(b""))
    assert body.failed
    with pytest.raises(NoMoreData):
        body.read(10)


# --- the memory a body holds while it arrives ----------------------------------------------------------


def test_the_loop_holds_what_fits_and_counts_what_is_already_there():
    budget = MemoryBudget(1000, wait_seconds=0)
    assert budget.try_hold(600)
    assert not budget.try_hold(600)
    budget.hold(600)  # an answer waiting to be written: counted even past the budget
    assert budget.admitted == 1200
    budget.release(1200)
    assert budget.admitted == 0 and budget.try_hold(1000)


# --- the chunked decoder, against gunicorn's reader ----------------------------------------------------


def check_trailers(data: bytes) -> list:
    """A stand-in for gunicorn's header parsing: lines of name: value, ended by CRLF."""
    if data.count(b"\n") != data.count(b"\r\n") or any(b":" not in line for line in data.split(b"\r\n")):
        raise InvalidHeader("trailer")
    return []


def decoded_by_gunicorn(raw: bytes):
    """(body, what follows it) as gunicorn's ChunkedReader reads `raw`, or the error it raises."""

    class Request:
        limit_request_field_size = 8190
        max_buffer_headers = 8190 * 32
        trailers = []

        def parse_headers(self, data, from_trailer=False):
            return check_trailers(data)

    unreader = IterUnreader([raw])
    reader = ChunkedReader(Request(), unreader)
    try:
        body = io.BytesIO()
        while data := reader.read(1 << 20):
            body.write(data)
        return body.getvalue(), unreader.read()
    except (ParseException, NoMoreData) as error:
        return type(error)


def decoded_by_the_loop(raw: bytes, piece: int, limit: int = 10**9):
    """(body, what follows it) as the loop reads `raw` arriving `piece` bytes at a time, or the error
    it raises (NoMoreData: the bytes ended before the body did)."""
    decoder, received, body = ChunkedBody(8190, 8190 * 32), bytearray(), bytearray()
    try:
        for start in range(0, len(raw), piece):
            received += raw[start : start + piece]
            if decoder.feed(received, body, limit, most_chunks=10**9):
                if decoder.trailers:
                    check_trailers(decoder.trailers)
                return bytes(body), bytes(received) + raw[start + piece :]
    except ParseException as error:
        return type(error)
    return NoMoreData


chunk = st.binary(min_size=1, max_size=40)
size_line = st.one_of(
    st.builds(lambda data: b"%x" % len(data), chunk),
    st.sampled_from([b"zz", b"", b" 5", b"5 ;a=b", b"5;a\x01", b'5;a="q"', b"5;", b"-1", b"0x5"]),
)


@st.composite
def chunked_bodies(draw):
    """Chunked framings, mostly valid, with malformed size lines, missing terminators, trailers and cuts."""
    raw = b""
    for data in draw(st.lists(chunk, max_size=5)):
        line = draw(st.one_of(st.just(b"%x" % len(data)), size_line))
        terminator = draw(st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"XX", b"\n"]))
        raw += line + b"\r\n" + data + terminator
    raw += b"0\r\n" + draw(st.sampled_from([b"", b"Trailer: 1\r\n", b"bad trailer\r\n", b"x\n"])) + b"\r\n"
    raw += draw(st.sampled_from([b"", b"GET /next HTTP/1.1\r\n\r\n"]))
    if draw(st.booleans()):
        raw = raw[: draw(st.integers(0, len(raw)))]
    return raw


@settings(max_examples=examples(400), deadline=None)
@given(chunked_bodies(), st.integers(1, 64))
def test_the_loop_decodes_chunked_bodies_as_gunicorn_does(raw, piece):
    expected = decoded_by_gunicorn(raw)
    found = decoded_by_the_loop(raw, piece)
    if found is NoMoreData:  # the loop waits for more bytes where gunicorn's reader finds them missing
        assert expected in (NoMoreData, ChunkMissingTerminator), raw
    else:
        assert found == expected, raw


def test_the_loop_stops_a_chunked_body_one_byte_past_the_limit():
    raw = b"".join(b"%x\r\n%s\r\n" % (100, b"x" * 100) for _ in range(100)) + b"0\r\n\r\n"
    decoder, received, body = ChunkedBody(8190, 8190 * 32), bytearray(raw), bytearray()
    assert not decoder.feed(received, body, limit=250, most_chunks=10**9)
    assert len(body) == 251


def test_the_loop_decodes_at_most_the_chunks_it_is_allowed_and_resumes():
    raw = b"1\r\nx\r\n" * 10 + b"0\r\n\r\nnext"
    decoder, received, body = ChunkedBody(8190, 8190 * 32), bytearray(raw), bytearray()
    assert not decoder.feed(received, body, 10**9, most_chunks=4)
    assert decoder.paused and body == b"xxxx"
    assert decoder.feed(received, body, 10**9, most_chunks=100)
    assert not decoder.paused and body == b"x" * 10 and received == b"next"
