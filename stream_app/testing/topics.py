"""An output topic stand-in for tests of the worker's steps without a broker: it keeps what was sent."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class SentRecord:
    """One record as the worker sent it."""

    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None


@dataclass
class RecordingTopic:
    """Keeps every record sent; each send is acknowledged at once."""

    sent: list[SentRecord] = field(default_factory=list)

    async def send(
        self, key: bytes | None = None, value: bytes | None = None, headers: list[tuple[str, bytes]] | None = None
    ) -> asyncio.Future[None]:
        """Record the send; return its (completed) acknowledgement, as faust's ``Topic.send`` does."""
        self.sent.append(SentRecord(key, value, headers))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        future.set_result(None)
        return future
