"""Every stream's segments as a caption feed shows them: each version once, replays and stale revisions dropped.

The documented rule (schemas/transcript-segment.v3.json): every record of one ``segment_id`` has a
higher ``revision`` than the one before, the final the highest; a reader keeps the highest per id.
`LatestRevisions` applies it to any number of streams (`TranscriptAssembler` does it for one stream and
also assembles its text). It remembers at most ``max_ids`` ids, least recently changed out first, so a
tail that runs for days stays small; a replay of an id forgotten since is shown again.
"""

from __future__ import annotations

from collections import OrderedDict

from stream_app.wire.segment import TranscriptSegment

MAX_IDS = 100_000


def rank(segment: TranscriptSegment) -> tuple[bool, int]:
    """Order of two versions of one segment id: a final beats any interim, then the higher revision wins."""
    return segment.is_final, segment.revision


class LatestRevisions:
    """Which version of each segment id was shown last; `offer` says whether a record is news."""

    def __init__(self, max_ids: int = MAX_IDS) -> None:
        self._max_ids = max_ids
        self._shown: OrderedDict[str, tuple[bool, int]] = OrderedDict()

    def offer(self, segment: TranscriptSegment) -> bool:
        """Take one record; True when it is a newer version of its segment than any shown (show it)."""
        seen = self._shown.get(segment.segment_id)
        if seen is not None and seen >= rank(segment):
            return False  # a replay (after a failover or a restart) or an older revision arriving late
        self._shown[segment.segment_id] = rank(segment)
        self._shown.move_to_end(segment.segment_id)
        while len(self._shown) > self._max_ids:
            self._shown.popitem(last=False)
        return True
