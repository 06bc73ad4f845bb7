"""The audio chunk as the worker sees it once decoded: stream metadata plus 16 kHz mono float32 samples."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 16_000  # what Whisper consumes; every chunk is converted to it on arrival


@dataclass(frozen=True)
class ChunkFormat:
    """The PCM layout a recorder declared in ``content-type`` (``audio/L16; rate=44100; channels=2``)."""

    encoding: str  # "s16le" or "f32le"
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class AudioChunk:
    """One decoded, validated chunk of one stream.

    ``offset`` is the stream position of the chunk's first sample, counted in 16 kHz samples, so that
    windowing is a function of the stream's audio and never of arrival timing.
    """

    stream_id: str
    seq: int
    offset: int
    samples: npt.NDArray[np.float32]
    end_of_stream: bool = False
    event_id: str = ""
    source: str = ""
    event_type: str = ""
    produced_at_ms: int = 0  # ce_time of the chunk, epoch milliseconds (latency is measured from it)
    source_format: ChunkFormat | None = None
    extra: dict[str, str] = field(default_factory=dict)
    key_digest: str = ""  # digest of its ce_streamkey (stream_app.wire.stream_key); "" when it carried none

    @property
    def end(self) -> int:
        """Stream position just after the chunk's last sample (16 kHz samples)."""
        return self.offset + int(self.samples.shape[0])
