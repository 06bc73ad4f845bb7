"""The pause detector and the windows it cuts: cut at a pause, the fixed rule without one, the stream's end."""

from __future__ import annotations

import itertools

import numpy as np
import numpy.typing as npt
import pytest

from stream_app.streaming.buffer import StreamBuffer
from stream_app.streaming.exceptions import WindowingConfigError
from stream_app.streaming.pauses import FRAME, Pause, find_pause, first_pause_after_speech, is_silent
from stream_app.streaming.windowing import Window, WindowingConfig
from stream_app.wire.chunk import AudioChunk
from stream_app.worker.profile import windowing_for

RATE = 16_000
# 2 s windows, 1 s fixed overlap, the last 0.8 s searched for a pause of at least 0.2 s, 0.1 s margins.
PAUSED = WindowingConfig.from_seconds(2.0, 1.0, pause_search=0.8, min_pause=0.2)


def tone(seconds: float, level: float = 0.3) -> npt.NDArray[np.float32]:
    """Speech stand-in: a loud sine (never exactly zero over a frame)."""
    n = round(seconds * RATE)
    samples: npt.NDArray[np.float32] = (level * np.sin(np.arange(n) * 0.3) + level * 0.5).astype(np.float32)
    return samples


def hush(seconds: float, level: float = 0.0) -> npt.NDArray[np.float32]:
    """Pause stand-in: silence, or faint deterministic noise of the given RMS."""
    n = round(seconds * RATE)
    samples: npt.NDArray[np.float32] = (level * np.sign(np.sin(np.arange(n) * 1.7 + 0.1))).astype(np.float32)
    return samples


def chunks_of(audio: npt.NDArray[np.float32], sizes: list[int], *, eos_separate: bool = False) -> list[AudioChunk]:
    out: list[AudioChunk] = []
    offset, seq = 0, 0
    while offset < len(audio):
        n = sizes[seq % len(sizes)]
        end = offset + n >= len(audio)
        out.append(AudioChunk("s", seq, offset, audio[offset : offset + n], end_of_stream=end and not eos_separate))
        offset, seq = min(offset + n, len(audio)), seq + 1
    if eos_separate:
        out.append(AudioChunk("s", seq, offset, np.zeros(0, dtype=np.float32), end_of_stream=True))
    return out


def windows_of(config: WindowingConfig, chunks: list[AudioChunk]) -> list[Window]:
    buffer = StreamBuffer(config)
    out: list[Window] = []
    for c in chunks:
        buffer.apply(c)
        out += buffer.take_ready_windows()
    return out


def spans(windows: list[Window]) -> list[tuple[int, int, int, bool]]:
    return [(w.start_sample, w.end_sample, w.stable_until_sample, w.is_last) for w in windows]


def test_detector_cuts_in_the_middle_of_the_longest_pause_in_the_search_region() -> None:
    audio = np.concatenate([tone(0.5), hush(0.5), tone(0.5), hush(0.3), tone(0.2), hush(0.2), tone(0.3)])
    pause, level = find_pause(audio, round(1.1 * RATE), min_pause=3200, ratio=0.1, floor=1e-3)
    assert pause == Pause(round(1.5 * RATE), round(0.3 * RATE))  # the 0.5 s one is before the region
    assert (pause.middle, pause.end) == (round(1.65 * RATE), round(1.8 * RATE))
    assert level > 0.2


def test_detector_prefers_the_latest_of_equal_pauses_and_ignores_short_ones() -> None:
    audio = np.concatenate([tone(0.4), hush(0.24), tone(0.4), hush(0.24), tone(0.4), hush(0.1), tone(0.22)])
    pause, _ = find_pause(audio, 0, min_pause=3200, ratio=0.1, floor=1e-3)
    assert pause == Pause(round(1.04 * RATE), round(0.24 * RATE))
    assert find_pause(audio, 0, min_pause=round(0.3 * RATE), ratio=0.1, floor=1e-3)[0] is None


def test_detector_threshold_is_relative_to_the_speech_level() -> None:
    noisy = np.concatenate([tone(1.0), hush(0.4, level=0.01), tone(0.6)])  # noise 30 dB below the speech
    pause, _ = find_pause(noisy, 0, min_pause=3200, ratio=0.1, floor=1e-3)
    assert pause == Pause(round(1.0 * RATE), round(0.4 * RATE))
    quiet = np.concatenate([tone(1.0, level=0.005), hush(0.4, level=0.01), tone(0.6, level=0.005)])
    assert find_pause(quiet, 0, min_pause=3200, ratio=0.1, floor=1e-3)[0] is None  # the "pause" is the loud part
    assert find_pause(tone(2.0), 0, min_pause=3200, ratio=0.1, floor=1e-3)[0] is None


def test_is_silent_reads_every_sample_including_a_partial_frame() -> None:
    assert is_silent(hush(1.0, level=0.001), 0.01)
    assert not is_silent(np.concatenate([hush(1.0), tone(0.005)]), 0.01)  # 80 samples, less than a frame
    assert is_silent(np.zeros(0, dtype=np.float32), 0.01)
    assert FRAME == 320


def test_window_is_cut_at_the_pause_and_the_next_one_starts_just_before_the_speech() -> None:
    audio = np.concatenate([tone(1.3), hush(0.6), tone(1.6)])  # 3.5 s, pause 1.3-1.9 s
    windows = windows_of(PAUSED, chunks_of(audio, [1600]))
    cut, margin = round(1.6 * RATE), 1600
    first = windows[0]
    assert (first.start_sample, first.end_sample, first.stable_until_sample) == (0, cut + margin, cut)
    assert np.array_equal(first.samples, audio[: cut + margin])
    assert windows[1].start_sample == round((1.9 - 0.2) * RATE)  # 0.2 s lead-in before the next speech
    assert windows[1].is_last and windows[1].end_sample == len(audio)


def test_pause_shorter_than_the_lead_in_starts_the_next_window_one_margin_before_the_cut() -> None:
    audio = np.concatenate([tone(1.5), hush(0.3), tone(1.7)])  # pause 1.5-1.8 s
    windows = windows_of(
        WindowingConfig.from_seconds(2.0, 1.0, pause_search=0.8, pause_lead=0.5), chunks_of(audio, [1600])
    )
    assert windows[0].stable_until_sample == round(1.65 * RATE)
    assert windows[1].start_sample == round(1.55 * RATE)


def test_no_pause_falls_back_to_the_fixed_rule() -> None:
    windows = windows_of(PAUSED, chunks_of(tone(4.5), [1600]))
    assert spans(windows) == [
        (0, 32000, 16000, False),
        (16000, 48000, 32000, False),
        (32000, 64000, 48000, False),
        (48000, 72000, 72000, True),
    ]


def test_pause_before_the_search_region_is_not_used() -> None:
    audio = np.concatenate([tone(0.5), hush(0.5), tone(2.0)])
    assert windows_of(PAUSED, chunks_of(audio, [1600]))[0].end_sample == 32000


def test_trailing_silence_gives_an_empty_last_window() -> None:
    audio = np.concatenate([tone(1.5), hush(0.4), tone(1.0), hush(1.0, level=0.005)])  # noise 35 dB down
    windows = windows_of(PAUSED, chunks_of(audio, [1600]))
    assert windows[-1].is_last and windows[-1].is_empty and windows[-1].stable_until_sample == len(audio)
    assert [w.is_last for w in windows[:-1]] == [False] * (len(windows) - 1)


def test_trailing_speech_is_transcribed_even_when_quiet() -> None:
    audio = np.concatenate([tone(1.5), hush(0.4), tone(1.4), hush(0.2), tone(0.3, level=0.1)])
    last = windows_of(PAUSED, chunks_of(audio, [1600]))[-1]
    assert last.is_last and not last.is_empty and last.end_sample == len(audio)


def speechlike(seed: int, seconds: float = 14.0) -> npt.NDArray[np.float32]:
    """Random bursts of tone and pauses (some long enough to cut at, some not)."""
    rng = np.random.default_rng(seed)
    parts: list[npt.NDArray[np.float32]] = []
    while sum(len(p) for p in parts) < seconds * RATE:
        parts.append(tone(float(rng.uniform(0.2, 1.5)), level=float(rng.uniform(0.05, 0.4))))
        parts.append(hush(float(rng.uniform(0.05, 0.6)), level=float(rng.uniform(0.0, 0.004))))
    return np.concatenate(parts)


@pytest.mark.parametrize("seed", range(6))
def test_pause_cut_windows_do_not_depend_on_chunking(seed: int) -> None:
    audio = speechlike(seed)
    config = WindowingConfig.from_seconds(3.0, 1.0, 0.5, pause_search=1.2)
    reference = windows_of(config, chunks_of(audio, [len(audio)]))
    cut_at_pauses = [w for w in reference if not (w.is_interim or w.is_last) and w.end_sample - w.start_sample < 48000]
    assert len(cut_at_pauses) > 1
    rng = np.random.default_rng(100 + seed)
    sizes = [int(n) for n in rng.integers(1, 9000, size=40)]
    for chunking in (chunks_of(audio, sizes), chunks_of(audio, [1600], eos_separate=True)):
        got = windows_of(config, chunking)
        finals = [w for w in got if not w.is_interim]
        assert spans(finals) == spans(reference)
        assert all(np.array_equal(a.samples, b.samples) for a, b in zip(finals, reference, strict=True))


def test_windows_leave_out_nothing_but_silence() -> None:
    audio = speechlike(9, seconds=30.0)
    windows = windows_of(WindowingConfig.from_seconds(3.0, 1.0, pause_search=1.2), chunks_of(audio, [4000]))
    for a, b in itertools.pairwise(windows):
        assert a.start_sample < b.start_sample
        if b.start_sample > a.stable_until_sample:  # a long pause: between its middle and the lead-in
            assert np.abs(audio[a.stable_until_sample : b.start_sample]).max() <= 0.004  # only silence
        if b.start_sample > a.end_sample:  # the pause's middle went unseen
            assert a.end_sample - a.stable_until_sample == 1600
    assert windows[-1].end_sample == len(audio)


def test_interim_previews_start_after_the_audio_already_seen() -> None:
    audio = np.concatenate([tone(1.5), hush(0.4), tone(2.6)])
    config = WindowingConfig.from_seconds(2.0, 1.0, 0.5, pause_search=0.8)
    windows = windows_of(config, chunks_of(audio, [800]))
    previews = [(w.index, w.start_sample, w.end_sample) for w in windows if w.is_interim]
    # the first window ends 0.1 s after its cut at 1.7 s; the second starts 0.2 s before the speech at 1.9 s
    seen, second = round(1.8 * RATE), round(1.7 * RATE)
    assert previews[:3] == [(0, 0, 8000), (0, 0, 16000), (0, 0, 24000)]
    assert previews[3:5] == [(1, second, seen + 8000), (1, second, seen + 16000)]
    assert all(w.stable_until_sample == w.start_sample for w in windows if w.is_interim)


def test_pause_settings_are_validated_and_read_from_the_configuration() -> None:
    with pytest.raises(WindowingConfigError):
        WindowingConfig(window=32000, overlap=0, pause_search=32000)  # no room left before the search
    with pytest.raises(WindowingConfigError):
        WindowingConfig(window=32000, overlap=0, pause_search=1000, min_pause=3200)  # pause longer than the search
    with pytest.raises(WindowingConfigError):
        WindowingConfig(window=32000, overlap=0, pause_search=8000, min_pause=3200, pause_margin=2000)
    from stream_app.config.loader import load_settings

    settings = load_settings(
        env={"STREAM_APP_STREAMING__PAUSE_SEARCH": "0.5", "STREAM_APP_STREAMING__MIN_PAUSE": "300ms"}
    )
    config = windowing_for(settings)
    assert config.pause_search == round(0.5 * settings.window_seconds * RATE)
    assert (config.min_pause, config.pause_margin) == (4800, 1600)
    assert (
        windowing_for(load_settings(env={"STREAM_APP_STREAMING__PAUSE_SEARCH": "0"})).pause_search == 0
    )


def test_an_utterance_ends_at_the_first_pause_after_its_minimum_length_whatever_the_chunking() -> None:
    rate = 16_000
    speech_part = (0.3 * np.sin(np.arange(rate) * 0.05)).astype(np.float32)
    silence = np.zeros(rate // 2, np.float32)
    audio = np.concatenate([speech_part, speech_part, silence, speech_part, silence])  # pause at 2.0-2.5 s

    def cut(samples: npt.NDArray[np.float32], checked: int) -> tuple[int | None, int, float]:
        return first_pause_after_speech(
            samples, checked_until=checked, min_speech=rate, min_pause=6400, grid=1600, ratio=0.05, floor=1e-3
        )

    found, _, _ = cut(audio, 0)
    assert found == 2 * rate
    checked, step_found = 0, None
    for end in range(800, audio.shape[0] + 1, 2777):  # asked again and again as audio arrives
        step_found, checked, _ = cut(audio[:end], checked)
        if step_found is not None:
            break
    assert step_found == found
    assert cut(audio[: 2 * rate + 3000], 0)[0] is None  # the pause is not long enough yet
