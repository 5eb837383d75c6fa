"""A chunked request body read as its bytes arrive, in the worker's event loop (service/runtime/worker.py):
its data, where it ends, and its malformations refused as gunicorn's own reader refuses them
(gunicorn.http.body.ChunkedReader, RFC 9112 section 7.1), with gunicorn's rules and errors, so that a
body means the same whichever of the two reads it.
"""

from gunicorn.http.body import CHUNK_EXT_RE
from gunicorn.http.errors import (
    ChunkMissingTerminator,
    InvalidChunkExtension,
    InvalidChunkSize,
    InvalidHeader,
    LimitRequestHeaders,
)

HEX_DIGITS = b"0123456789abcdefABCDEF"


class ChunkedBody:
    """The decoder of one chunked body. `feed` moves what has arrived into the body, framing removed;
    once the body has ended, `trailers` holds its trailer section (b"" for none), still to be checked
    as headers are."""

    def __init__(self, max_size_line: int, max_trailers: int):
        self.max_size_line, self.max_trailers = max_size_line, max_trailers
        self.data_left = 0  # of the current chunk
        self.crlf_next = False  # after a chunk's data
        self.in_trailers = False
        self.trailers: bytes | None = None
        self.chunks = 0  # read so far
        self.paused = False  # by `most_chunks`, with more to decode in what was received

    def feed(self, received: bytearray, body: bytearray, limit: int, most_chunks: int) -> bool:
        """Move the body's data from the front of `received` to the end of `body`, deleting what is
        consumed from `received` (what follows the body stays there), stopping once `body` is one byte
        past `limit` or `most_chunks` chunks have begun (then `paused`); True once the body has ended.
        Raises gunicorn's ParseException for malformed framing."""
        with memoryview(received) as view:
            consumed = self._decode(received, view, body, limit, self.chunks + most_chunks)
        del received[:consumed]
        return self.trailers is not None

    def _decode(self, received: bytearray, view: memoryview, body: bytearray, limit: int, last_chunk: int) -> int:
        """The decoding itself, from an offset into `received` (deleting each chunk's bytes from its front
        would move the rest every time); returns how many bytes it consumed."""
        at, self.paused = 0, False
        while self.trailers is None:
            if self.data_left:
                take = min(self.data_left, len(received) - at, limit + 1 - len(body))
                if take <= 0:
                    break
                body += view[at : at + take]
                at += take
                self.data_left -= take
                self.crlf_next = not self.data_left
            elif self.crlf_next:
                if len(received) - at < 2:
                    break
                if view[at : at + 2] != b"\r\n":
                    raise ChunkMissingTerminator(bytes(view[at : at + 2]))
                at += 2
                self.crlf_next = False
            elif self.in_trailers:
                at = self._trailers(received, at)
                break
            elif self.chunks >= last_chunk:
                self.paused = at < len(received)
                break
            else:
                end = received.find(b"\r\n", at)
                if end < 0:
                    if len(received) - at > self.max_size_line:
                        raise InvalidChunkSize(b"line over %d bytes with no terminator" % self.max_size_line)
                    break
                size = chunk_size(bytes(view[at:end]))
                at = end + 2
                self.chunks += 1
                self.data_left, self.in_trailers = size, size == 0
        return at

    def _trailers(self, received: bytearray, at: int) -> int:
        if received[at : at + 2] == b"\r\n":
            self.trailers = b""
            return at + 2
        end = received.find(b"\r\n\r\n", at)
        if end < 0:
            if len(received) - at > self.max_trailers:
                raise LimitRequestHeaders("limit request trailer section size")
            if received.count(b"\n", at) != received.count(b"\r\n", at):
                raise InvalidHeader("bare LF as line terminator")
            return at
        self.trailers = bytes(received[at:end])
        return end + 4


def chunk_size(line: bytes) -> int:
    """A chunk-size line's size (RFC 9112 section 7.1.1), its extensions checked and ignored."""
    size, *extension = line.split(b";", 1)
    if extension:
        if b"\r" in extension[0]:
            raise InvalidChunkExtension("bare CR not allowed")
        size = size.rstrip(b" \t")
    if not size or size.translate(None, HEX_DIGITS):
        raise InvalidChunkSize(size)
    if extension and not CHUNK_EXT_RE.fullmatch(b";" + extension[0]):
        raise InvalidChunkExtension("invalid chunk extension")
    return int(size, 16)
