"""The worker's faust tables, addressed by partition, with changelog acknowledgements to await.

faust's ``table[key] = value`` routes by the record being processed and drops the changelog send's
future, so a failed changelog write is only logged (and after a rebalance another replica restores
stale state). The worker writes from tasks that outlive the record that started them and must know
when its state is durable, so it goes one level down: the partition's RocksDB file directly, and
``send_changelog`` with the partition named, keeping the future. The RocksDB access
(``_db_for_partition``) is faust-streaming's own internals; pyproject pins the version it was read from.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from typing import Any, Protocol

from faust.stores.rocksdb import Store as FaustRocksStore

# faust's RocksDB store keeps the changelog offset it has applied under this key, beside our records
FAUST_OFFSET_KEY: bytes = FaustRocksStore.offset_key
# our own bookkeeping keys start with a NUL byte: never a stream id (printable), page or held chunk key
INTERNAL_PREFIX = b"\x00stream-app:"


def is_internal(key: bytes) -> bool:
    """Whether ``key`` is bookkeeping (faust's or ours) rather than a record of the worker's state."""
    return key == FAUST_OFFSET_KEY or key.startswith(INTERNAL_PREFIX)


class TableIO(Protocol):
    """A key-value table split by partition, whose writes return the changelog's acknowledgement."""

    def get(self, partition: int, key: bytes) -> bytes | None:
        """Read a key of one partition."""
        ...

    def put(self, partition: int, key: bytes, value: bytes) -> Awaitable[object]:
        """Write locally now; the result completes when the changelog has the record."""
        ...

    def delete(self, partition: int, key: bytes) -> Awaitable[object]:
        """Delete locally now; the result completes when the changelog has the tombstone."""
        ...

    def keys(self, partition: int) -> Iterator[bytes]:
        """Iterate one partition's keys (bookkeeping keys such as faust's offset are not listed)."""
        ...


class ChangelogTable:
    """`TableIO` over one faust RocksDB table (rocksdict driver, raw bytes)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    @property
    def name(self) -> str:
        """The table's name."""
        return str(self._table.name)

    def _db(self, partition: int) -> Any:
        return self._table.data._db_for_partition(partition)

    def get(self, partition: int, key: bytes) -> bytes | None:
        """Read a key of one partition."""
        value = self._db(partition).get(key)
        return None if value is None else bytes(value)

    def put(self, partition: int, key: bytes, value: bytes) -> Awaitable[object]:
        """Write locally, then send the change to the changelog partition of the same number."""
        self._db(partition).put(key, value)
        fut: Awaitable[object] = self._table.send_changelog(partition, key, value)
        return fut

    def delete(self, partition: int, key: bytes) -> Awaitable[object]:
        """Delete locally, then send a tombstone."""
        self._db(partition).delete(key)
        fut: Awaitable[object] = self._table.send_changelog(partition, key, None, value_serializer="raw")
        return fut

    def keys(self, partition: int) -> Iterator[bytes]:
        """Iterate one partition's keys (RocksDB order), leaving out faust's offset and our bookkeeping."""
        for raw in self._db(partition).keys():  # noqa: SIM118 (rocksdict iterates items)
            key = bytes(raw)
            if not is_internal(key):
                yield key
