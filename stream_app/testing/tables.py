"""In-memory tables with the worker's `TableIO` interface, for tests of the state store without a broker.

Each write's acknowledgement is an already completed future, or a failed one when the test asks a
table to fail its next writes (a changelog send the broker refused).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator

from stream_app.streaming import LiveConfig, StreamSession
from stream_app.worker.catch_up import TakeOver
from stream_app.worker.live import LiveStream
from stream_app.worker.records import encode_header
from stream_app.worker.store import StreamStore
from stream_app.worker.tables import WriteStamp, is_internal


class MemoryTable:
    """A dict per partition; ``fail_next`` makes the next writes' acknowledgements fail."""

    def __init__(self) -> None:
        self.data: dict[int, dict[bytes, bytes]] = {}
        self.stamps: dict[int, dict[bytes, WriteStamp | None]] = {}  # the stamp of each key's last write
        self.log: dict[int, dict[bytes, list[bytes]]] = {}  # every value each key was given, in order
        self.fail_next = 0
        self.writes = 0

    def get(self, partition: int, key: bytes) -> bytes | None:
        """Read a key of one partition."""
        return self.data.get(partition, {}).get(key)

    def put(self, partition: int, key: bytes, value: bytes, stamp: WriteStamp | None = None) -> Awaitable[object]:
        """Write now; the returned acknowledgement is complete (or failed, see ``fail_next``)."""
        self.data.setdefault(partition, {})[key] = value
        self.stamps.setdefault(partition, {})[key] = stamp
        self.log.setdefault(partition, {}).setdefault(key, []).append(value)
        return self._ack()

    def history(self, partition: int, key: bytes) -> list[bytes]:
        """Every value written to ``key``, oldest first (what a changelog held before compaction)."""
        return list(self.log.get(partition, {}).get(key, []))

    def delete(self, partition: int, key: bytes, stamp: WriteStamp | None = None) -> Awaitable[object]:
        """Delete now."""
        self.data.get(partition, {}).pop(key, None)
        self.stamps.setdefault(partition, {})[key] = stamp
        return self._ack()

    def keys(self, partition: int) -> Iterator[bytes]:
        """Iterate one partition's keys (bookkeeping keys left out, as `ChangelogTable` does)."""
        yield from sorted(key for key in self.data.get(partition, {}) if not is_internal(key))

    async def fence(self, partition: int, key: bytes, value: bytes, stamp: WriteStamp) -> TakeOver:
        """Write a fence; one dict is every owner's state, so there is never anything to catch up."""
        before = self.get(partition, key)
        await self.put(partition, key, value, stamp)
        return TakeOver(0, 0, before)

    async def catch_up(self, partition: int, take_over: TakeOver) -> int:
        """Nothing to catch up (see `fence`)."""
        return 0

    def _ack(self) -> Awaitable[object]:
        self.writes += 1
        future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.fail_next > 0:
            self.fail_next -= 1
            future.set_exception(ConnectionError("changelog write refused"))
        else:
            future.set_result(None)
        return future


def memory_store(config: LiveConfig | None = None) -> StreamStore:
    """Build a `StreamStore` over two fresh in-memory tables."""
    return StreamStore(MemoryTable(), MemoryTable(), config or LiveConfig())


def state_fingerprint(session: StreamSession) -> bytes:
    """Return the bytes the worker would store for the session now (equal bytes: equal state)."""
    live = LiveStream(session.stream_id, 0, session)
    header = memory_store().header(live)
    held = b"".join(chunk.samples.tobytes() for _, chunk in sorted(session.buffer.state.pending.items()))
    return encode_header(header) + session.buffer.state.audio.view().tobytes() + held
