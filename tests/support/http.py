"""Plain HTTP/1.1 requests to a local server, with full control of the headers (``Host`` included)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping


async def http_get(
    port: int,
    path: str,
    method: str = "GET",
    *,
    host: str | None = "",
    headers: Mapping[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """A plain HTTP/1.1 request (no upgrade) to 127.0.0.1; returns status, headers (lower-cased)
    and body. ``host`` is the ``Host`` header (default ``127.0.0.1:PORT``; ``None``: none sent)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"{method} {path} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {host or f'127.0.0.1:{port}'}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append("Connection: close")
    try:
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        received = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in header_lines if line)
        }
        length = int(received.get("content-length", "0"))
        body = await reader.readexactly(length) if method != "HEAD" else b""
        return int(status_line.split()[1]), received, body
    finally:
        writer.close()
        await writer.wait_closed()
