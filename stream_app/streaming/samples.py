"""SampleQueue: the samples ``[base, end)`` of one stream's timeline, appended and released cheaply.

A live stream appends a chunk every 100 ms and releases the audio no window needs after each cut. A
plain ``np.concatenate`` per chunk copies the whole buffer every time (a 30 s window is 1.9 MB of
float32); here appends go into spare capacity (doubling when full, so each sample is copied O(1) times
on average) and a release only moves the start index, compacting once the dead prefix is half the array.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_MIN_CAPACITY = 1_600  # 100 ms: a stream that sends one chunk holds no more than it sent


class SampleQueue:
    """Float32 samples of stream positions ``[base, end)``."""

    def __init__(self, base: int = 0, samples: npt.NDArray[np.float32] | None = None) -> None:
        data = np.zeros(0, np.float32) if samples is None else np.asarray(samples, np.float32).reshape(-1)
        self._data = np.array(data, dtype=np.float32, copy=True)
        self._start = 0
        self._len = int(data.shape[0])
        self._base = base

    @property
    def base(self) -> int:
        """Stream position of the first held sample."""
        return self._base

    @property
    def end(self) -> int:
        """Stream position just after the last held sample."""
        return self._base + self._len

    def __len__(self) -> int:
        return self._len

    def view(self) -> npt.NDArray[np.float32]:
        """Return the held samples (a view: valid until the next append or release)."""
        return self._data[self._start : self._start + self._len]

    def append(self, samples: npt.NDArray[np.float32]) -> None:
        """Add samples at the end."""
        count = int(samples.shape[0])
        if count == 0:
            return
        needed = self._start + self._len + count
        if needed > self._data.shape[0]:
            self._grow(self._len + count)
        stop = self._start + self._len
        self._data[stop : stop + count] = samples
        self._len += count

    def release_to(self, position: int) -> None:
        """Forget the samples before ``position`` (a position past the end empties the queue there)."""
        if position <= self._base:
            return
        drop = min(position - self._base, self._len)
        self._start += drop
        self._len -= drop
        self._base = position
        if self._len == 0:
            self._start = 0
        elif self._start > self._data.shape[0] // 2:
            self._data[: self._len] = self._data[self._start : self._start + self._len]
            self._start = 0

    def reset(self, base: int) -> None:
        """Drop every sample and restart the timeline at ``base``."""
        self._data = np.zeros(0, np.float32)
        self._start = self._len = 0
        self._base = base

    def slice(self, start: int, stop: int) -> npt.NDArray[np.float32]:
        """Copy of the samples of positions ``[start, stop)``, clipped to what is held."""
        first = max(start, self._base) - self._base
        last = min(stop, self.end) - self._base
        if last <= first:
            return np.zeros(0, np.float32)
        return self._data[self._start + first : self._start + last].copy()

    def _grow(self, at_least: int) -> None:
        capacity = max(_MIN_CAPACITY, at_least, 2 * self._data.shape[0])
        grown = np.empty(capacity, np.float32)
        grown[: self._len] = self._data[self._start : self._start + self._len]
        self._data = grown
        self._start = 0
