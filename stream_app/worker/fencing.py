"""Owner epochs: a replaced owner's late state writes are refused when written and ignored when restored.

A partition can have two writers for a while: the replica it was taken from (evicted while its loop
was blocked, a reader parked in backpressure, a window's attempt count scheduled outside the
partition's tasks, the producer retrying a send for minutes) and its new owner. Each owner takes the
partition over with an *owner epoch* one above the last one recorded in the partition's changelogs,
and records it there first, as a *fence* record (`FENCE_KEY`), before any state write of its own. Every
state write carries its writer's epoch (`WriteStamp`, as changelog record headers), so:

* at write time, a writer whose epoch is no longer the partition's current one in this process (it was
  revoked) is refused (`OwnerEpochs.check` raises `Fenced`);
* at restore time, a record whose epoch is below a fence that precedes it in the changelog was written
  by a replaced owner after its successor took over: it never replaces a value (`restore_decision`);
  where the key has none, the table may leave a marker instead (the streams table does: the stream is
  then reported lost rather than restarted as if it were new).

Compaction keeps only the latest fence, so a late write that precedes it but follows an older,
compacted fence is not recognised; the window for that is one ownership change, and CRC checks of the
pages still catch inconsistent audio.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream_app.worker.exceptions import Fenced
from stream_app.worker.tables import INTERNAL_PREFIX, WriteStamp

FENCE_KEY = INTERNAL_PREFIX + b"fence"  # value: the epoch of the owner that took the partition over


def encode_fence(epoch: int) -> bytes:
    """Encode a fence record's value."""
    return str(epoch).encode()


def decode_fence(value: bytes | None) -> int:
    """Read a fence record's value (0 when there is none, or it is not a number)."""
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


class OwnerEpochs:
    """The owner epoch under which this process may write each partition's state now."""

    def __init__(self) -> None:
        self._current: dict[int, int] = {}

    def grant(self, partition: int, epoch: int) -> None:
        """Own ``partition`` under ``epoch`` from now on."""
        self._current[partition] = epoch

    def revoke(self, partition: int) -> None:
        """Accept no write of ``partition`` any more (it was taken away)."""
        self._current.pop(partition, None)

    def current(self, partition: int) -> int | None:
        """Return the epoch writes of ``partition`` must carry, or None when this process does not own it."""
        return self._current.get(partition)

    def check(self, partition: int, epoch: int) -> None:
        """Refuse a write of ``partition`` under ``epoch`` unless that is the current owner's.

        Raises:
            Fenced: the writer belongs to an ownership that has ended.
        """
        current = self._current.get(partition)
        if current != epoch:
            owner = "no owner here" if current is None else f"owner epoch {current}"
            raise Fenced(f"partition {partition}: a write under owner epoch {epoch} refused ({owner})")


@dataclass(frozen=True)
class Decision:
    """What restoring one changelog record does to its key."""

    write: bool  # change the key (to ``value``); False: leave it as it is
    value: bytes | None = None  # None with ``write``: delete
    fenced: bool = False  # the record was a replaced owner's late write


def restore_decision(
    key: bytes,
    value: bytes | None,
    stamp: WriteStamp | None,
    fence: int,
    *,
    has_value: bool,
    fenced_value: bytes | None,
) -> Decision:
    """Decide what a restored changelog record does, ``fence`` being the newest fence before it.

    Args:
        key: the record's key.
        value: the record's value (None: a tombstone).
        stamp: its writer's stamp (None: an earlier release's or a foreign record, applied as it is).
        fence: the highest owner epoch fenced before this record in the changelog.
        has_value: whether the key holds a value now.
        fenced_value: what a fenced record leaves on a key without a value (None: nothing).
    """
    if key == FENCE_KEY or stamp is None or stamp.epoch >= fence:
        return Decision(True, value)
    if has_value or fenced_value is None:
        return Decision(False, fenced=True)
    return Decision(True, fenced_value, fenced=True)
