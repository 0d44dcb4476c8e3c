"""Raw HTTP/1.1 over a socket, for bytes an HTTP client library would refuse to send."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        return json.loads(self.body)


async def send_raw(port: int, data: bytes, *, then: bytes = b"", pause: float = 0.0) -> RawResponse | None:
    """Write ``data`` (and ``then`` after ``pause`` seconds, then end the sending side); read the
    answer until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if then:
            await asyncio.sleep(pause)
            writer.write(then)
            await writer.drain()
            writer.write_eof()
        raw = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    if not raw:
        return None
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RawResponse(int(lines[0].split()[1]), headers, body)


def request(lines: list[bytes], body: bytes = b"") -> bytes:
    return b"\r\n".join([*lines, b"Host: 127.0.0.1", b"Connection: close", b"", b""]) + body
