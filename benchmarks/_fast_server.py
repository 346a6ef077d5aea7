"""A minimal, fast HTTP/1.1 server for benchmarks: canned replies, keep-alive.

Runs in its own process so that its CPU is not charged to the client under test.
POST /v1/messages answers a fixed JSON message, or, when the body asks for
``"stream":true``, a fixed SSE stream given on the command line.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

JSON_REPLY = (
    b'{"id":"msg_bench","type":"message","role":"assistant","model":"claude-sonnet-5-5",'
    b'"content":[{"type":"text","text":"Hello! How can I help you today?"}],'
    b'"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":12,'
    b'"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"cache_creation":'
    b'{"ephemeral_5m_input_tokens":0,"ephemeral_1h_input_tokens":0},"output_tokens":11,'
    b'"service_tier":"standard"}}'
)


def _json_response(body: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nrequest-id: req_bench\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


class _Handler(asyncio.Protocol):
    def __init__(self, stream_body: bytes, chunk_size: int) -> None:
        self.buffer = b""
        self.stream_body = stream_body
        self.chunk_size = chunk_size
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            head_end = self.buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buffer[:head_end].lower()
            length = 0
            for line in head.split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            total = head_end + 4 + length
            if len(self.buffer) < total:
                return
            body = self.buffer[head_end + 4 : total]
            self.buffer = self.buffer[total:]
            self._answer(body)

    def _answer(self, body: bytes) -> None:
        assert self.transport is not None
        if b'"stream":true' in body.replace(b" ", b""):
            self.transport.write(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"request-id: req_bench\r\ntransfer-encoding: chunked\r\n\r\n"
            )
            data = self.stream_body
            step = self.chunk_size or len(data)
            parts = []
            for start in range(0, len(data), step):
                piece = data[start : start + step]
                parts.append(b"%x\r\n%s\r\n" % (len(piece), piece))
            parts.append(b"0\r\n\r\n")
            self.transport.write(b"".join(parts))
        else:
            self.transport.write(_json_response(JSON_REPLY))


async def _serve(port: int, stream_body: bytes, chunk_size: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Handler(stream_body, chunk_size), "127.0.0.1", port)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    stream_body = Path(sys.argv[2]).read_bytes() if len(sys.argv) > 2 else b""
    chunk_size = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    asyncio.run(_serve(port, stream_body, chunk_size))


if __name__ == "__main__":
    main()
