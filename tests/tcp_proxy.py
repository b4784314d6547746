"""A TCP proxy on 127.0.0.1 that can cut the network the way a NAT or load-balancer failover
does: the connections open at the cut never answer again (bytes vanish, nothing is closed), new
ones are silent too while the cut lasts and work again once it is healed. It can also go down
(connections refused and reset), as a stopped database looks."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field


@dataclass
class _Flow:
    """One proxied connection; a silent flow swallows everything in both directions."""

    silent: bool
    writers: list[asyncio.StreamWriter] = field(default_factory=list)


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target_host:target_port``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._flows: list[_Flow] = []
        self._cut = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> int:
        """Listen (on ``port``, or a free one); returns the port."""
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port or self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def cut(self) -> None:
        """Black-hole every open connection for good, and new ones until :meth:`heal`."""
        self._cut = True
        for flow in self._flows:
            flow.silent = True

    def heal(self) -> None:
        """New connections work again; the ones cut stay silent."""
        self._cut = False

    async def down(self) -> None:
        """Refuse new connections and reset the open ones (a stopped server)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for flow in self._flows:
            for writer in flow.writers:
                writer.transport.abort()
        self._flows.clear()

    async def close(self) -> None:
        """Stop listening and drop every connection."""
        await self.down()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        flow = _Flow(silent=self._cut, writers=[writer])
        self._flows.append(flow)
        if flow.silent:
            self._spawn(self._pump(reader, None, flow))
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        flow.writers.append(up_writer)
        self._spawn(self._pump(reader, up_writer, flow))
        self._spawn(self._pump(up_reader, writer, flow))

    def _spawn(self, work: object) -> None:
        task = asyncio.ensure_future(work)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None, flow: _Flow
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if flow.silent or writer is None:
                    continue  # lost in the network
                writer.write(data)
                await writer.drain()
            if not flow.silent and writer is not None:
                writer.close()  # an orderly close passes through a working network
