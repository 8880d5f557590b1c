"""SIP over TCP (RFC 3261 §18.3): one framer per connection, responses on the same connection.

The user agent core is transport-agnostic and addresses peers by (host, port); this shell maps
the address a connection came from to that connection, so that what the core sends to that
address goes back over it (§18.2.2: responses use the connection the request arrived on).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from ivr.logs import get_logger
from ivr.sip.errors import SipParseError
from ivr.sip.framing import StreamFramer

Address = tuple[str, int]
log = get_logger(component="sip-tcp")

IDLE_TIMEOUT = 600.0


class SipTcpServer:
    def __init__(self, on_message: Callable[[bytes, Address], None]) -> None:
        self._on_message = on_message
        self._server: asyncio.Server | None = None
        self._writers: dict[Address, asyncio.StreamWriter] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> None:
        self._server = await asyncio.start_server(self._serve, host, port)

    def send(self, data: bytes, addr: Address) -> bool:
        writer = self._writers.get(addr)
        if writer is None or writer.is_closing():
            return False
        writer.write(data)
        return True

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers.values():
            writer.close()
        for task in self._tasks:
            task.cancel()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        peer = writer.get_extra_info("peername")
        addr: Address = (peer[0], peer[1])
        self._writers[addr] = writer
        framer = StreamFramer()
        try:
            while True:
                chunk = await asyncio.wait_for(reader.read(65536), IDLE_TIMEOUT)
                if not chunk:
                    break
                try:
                    messages = framer.feed(chunk)
                except SipParseError as exc:
                    # A stream that lost its framing cannot be resynchronised: close it.
                    log.info("closing tcp connection", peer=addr, reason=exc.reason)
                    break
                for message in messages:
                    self._on_message(message, addr)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self._writers.pop(addr, None)
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
