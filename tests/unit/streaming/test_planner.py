from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pytest

from stream_app.streaming.config import LiveConfig, seconds_to_samples
from stream_app.streaming.exceptions import WindowingConfigError
from stream_app.streaming.planner import Cut, End, Event, Pause, Planner, Rebase, Tick
from stream_app.streaming.speech import FRAME, SpeechTrack

S = 16000


def track_of(pattern: Sequence[tuple[float, bool]]) -> SpeechTrack:
    """Frames from (seconds, voiced) runs."""
    probs: list[float] = []
    for seconds, voiced in pattern:
        probs += [0.9 if voiced else 0.05] * round(seconds * S / FRAME)
    track = SpeechTrack()
    track.extend(np.array(probs, np.float32), b"")
    return track


def events(planner: Planner, track: SpeechTrack, *, ended: bool = True) -> list[Event]:
    if ended:
        track.finish(track.known_until)
    out: list[Event] = []
    while (event := planner.next_event(track, track.known_until, ended)) is not None:
        out.append(event)
        if isinstance(event, Rebase):
            planner.move_start(event.position - seconds_to_samples(2))
    return out


def test_a_sentence_opens_a_window_ticks_on_the_grid_and_is_cut_at_the_end_of_the_stream() -> None:
    config = LiveConfig()
    got = events(Planner(config), track_of([(1.024, False), (3.008, True), (0.512, False)]))
    lead_start = 32 * FRAME - config.speech_lead  # first voiced frame 32, minus the lead
    assert [type(e) for e in got] == [Tick, Tick, Tick, Pause, Cut, End]
    assert [e.position for e in got if isinstance(e, Tick)] == [2 * S, 3 * S, 4 * S]
    pause = got[3]
    assert isinstance(pause, Pause) and pause.end == 126 * FRAME + config.speech_tail
    cut = got[4]
    assert isinstance(cut, Cut) and cut.last and cut.start == lead_start // 160 * 160
    assert isinstance(got[-1], End)


def test_short_pauses_keep_the_window_long_pauses_and_full_windows_cut_it() -> None:
    config = LiveConfig(min_window=seconds_to_samples(4), commit_step=0)
    speech = [(1.5, True), (0.512, False)] * 4 + [(2.5, False), (1.0, True)]
    got = events(Planner(config), track_of(speech))
    kinds = [type(e).__name__ for e in got]
    # pauses commit inside the window; the third pause comes after 4 s of speech: a cut
    assert kinds == ["Pause", "Pause", "Cut", "Pause", "Cut", "Cut", "End"]
    assert [e.last for e in got if isinstance(e, Cut)] == [False, False, True]


def test_no_tick_without_speech_in_the_step_before_it() -> None:
    config = LiveConfig(long_pause=seconds_to_samples(5), utterance_pause=seconds_to_samples(3), speech_tail=0)
    got = events(Planner(config), track_of([(1.0, True), (2.0, False), (1.0, True)]))
    ticks = [e.position for e in got if isinstance(e, Tick)]
    # speech ends at 0.992 s and starts again at 2.976 s: the step (1 s, 2 s] is silent, (2 s, 3 s] is not
    assert ticks == [1 * S, 3 * S]


def test_a_window_that_reaches_its_maximum_is_rebased() -> None:
    config = LiveConfig(max_window=seconds_to_samples(6), min_window=seconds_to_samples(6), commit_step=0)
    got = events(Planner(config), track_of([(10.0, True)]))
    rebases = [e for e in got if isinstance(e, Rebase)]
    assert rebases and rebases[0].position >= 6 * S


def test_events_do_not_depend_on_how_the_frames_arrived() -> None:
    pattern = [(0.7, False), (2.2, True), (0.6, False), (3.1, True), (2.3, False), (1.4, True), (0.3, False)]
    whole = events(Planner(LiveConfig()), track_of(pattern))
    full = track_of(pattern)
    planner, track, got = Planner(LiveConfig()), SpeechTrack(), []
    rng = np.random.default_rng(7)
    position = 0
    while position < full.frames:
        step = int(rng.integers(1, 40))
        track.extend(full.probs[position : position + step], b"")
        position += step
        while (event := planner.next_event(track, track.known_until, False)) is not None:
            got.append(event)
    track.finish(track.known_until)
    while (event := planner.next_event(track, track.known_until, True)) is not None:
        got.append(event)
    assert got == whole


def heard_events(planner: Planner, track: SpeechTrack, *, skip_missed: bool) -> list[Event]:
    """Events of audio all heard at once, the stream not ended (a stream behind its audio)."""
    out: list[Event] = []
    while (event := planner.next_event(track, track.known_until, False, skip_missed=skip_missed)) is not None:
        out.append(event)
    return out


def test_a_stream_behind_its_audio_decodes_once_at_the_newest_step_it_has_speech_for() -> None:
    pattern = [(1.024, False), (6.016, True), (0.512, False)]
    every = heard_events(Planner(LiveConfig()), track_of(pattern), skip_missed=False)
    assert [e.position for e in every if isinstance(e, Tick)] == [2 * S, 3 * S, 4 * S, 5 * S, 6 * S, 7 * S]
    behind = heard_events(Planner(LiveConfig()), track_of(pattern), skip_missed=True)
    assert [type(e) for e in behind] == [Tick, Pause]
    assert behind[0] == Tick(7 * S)
    assert behind[1] == every[-1]  # the pause is the same event


def test_a_tick_whose_next_step_is_silent_is_not_passed_over() -> None:
    config = LiveConfig(utterance_pause=seconds_to_samples(2), long_pause=seconds_to_samples(3))
    # speech from 1 s to 3.5 s, silence to 5.1 s, speech to 6.1 s: the step (4 s, 5 s] is silent,
    # so the tick at 4 s is the last that will see the first sentence before the pause
    pattern = [(1.0, False), (2.5, True), (1.6, False), (1.0, True), (0.1, False)]
    every = heard_events(Planner(config), track_of(pattern), skip_missed=False)
    assert [e.position for e in every if isinstance(e, Tick)] == [2 * S, 3 * S, 4 * S, 6 * S]
    behind = heard_events(Planner(config), track_of(pattern), skip_missed=True)
    assert [e.position for e in behind if isinstance(e, Tick)] == [4 * S, 6 * S]


def test_a_stream_that_keeps_up_passes_over_no_tick() -> None:
    pattern = [(0.7, False), (2.2, True), (0.6, False), (3.1, True), (2.3, False), (1.4, True), (0.3, False)]
    full = track_of(pattern)

    def arriving(skip_missed: bool) -> list[Event]:
        planner, track, got = Planner(LiveConfig()), SpeechTrack(), []
        for position in range(0, full.frames, 8):  # 256 ms at a time: never a whole step behind
            track.extend(full.probs[position : position + 8], b"")
            while (event := planner.next_event(track, track.known_until, False, skip_missed=skip_missed)) is not None:
                got.append(event)
        return got

    assert arriving(True) == arriving(False)
    assert sum(isinstance(e, Tick) for e in arriving(True)) >= 5


def test_the_config_refuses_rules_that_cannot_work() -> None:
    with pytest.raises(WindowingConfigError):
        LiveConfig(max_window=40 * S)
    with pytest.raises(WindowingConfigError):
        LiveConfig(speech_tail=seconds_to_samples(1), utterance_pause=seconds_to_samples(0.4))
    with pytest.raises(WindowingConfigError):
        LiveConfig(silence_threshold=0.6, speech_threshold=0.5)


def test_with_a_step_growth_a_long_window_ticks_less_often_on_the_same_grid() -> None:
    speech = track_of([(1.024, False), (15.0, True)])
    fixed = [e.position for e in events(Planner(LiveConfig()), speech) if isinstance(e, Tick)]
    speech = track_of([(1.024, False), (15.0, True)])
    grown = LiveConfig(commit_step_growth=seconds_to_samples(4))
    got = events(Planner(grown), speech)
    ticks = [e.position for e in got if isinstance(e, Tick)]
    start = next(e.start for e in got if isinstance(e, Cut))
    assert fixed == [n * S for n in range(2, 17)]
    assert set(ticks) <= set(fixed)  # still on the stream's grid
    # one step while the window spans under 4 s, two under 8 s, three under 12 s, four after
    for before, after in itertools.pairwise(ticks):
        assert after - before == S * (1 + (before - start) // seconds_to_samples(4)), (before, after)
    assert ticks == [n * S for n in (2, 3, 4, 5, 7, 9, 12, 15)]  # the window opens at 0.624 s


def test_a_preview_rereads_the_shorter_of_the_contexts_that_are_set() -> None:
    assert LiveConfig(decode_context=0, preview_context=2 * S).preview_reread == 2 * S
    assert LiveConfig(decode_context=4 * S, preview_context=2 * S).preview_reread == 2 * S
    assert LiveConfig(decode_context=S, preview_context=2 * S).preview_reread == S
    assert LiveConfig(decode_context=4 * S, preview_context=0).preview_reread == 4 * S
    assert LiveConfig(decode_context=0, preview_context=0).preview_reread == 0


def test_the_commit_step_grows_by_one_step_for_every_growth_span() -> None:
    config = LiveConfig(commit_step=S, commit_step_growth=8 * S)
    assert [config.commit_stride(seconds * S) for seconds in (0, 7, 8, 15, 16, 20)] == [
        S,
        S,
        2 * S,
        2 * S,
        3 * S,
        3 * S,
    ]
    assert LiveConfig(commit_step=S).commit_stride(20 * S) == S
    with pytest.raises(WindowingConfigError):
        LiveConfig(commit_step_growth=-1)


def test_a_stream_behind_its_audio_still_ticks_before_its_window_reaches_its_maximum() -> None:
    config = LiveConfig(max_window=seconds_to_samples(6), min_window=seconds_to_samples(6))
    planner, track, got = Planner(config), track_of([(10.0, True)]), []
    while not got or not isinstance(got[-1], Rebase):  # up to the window's first re-base
        event = planner.next_event(track, track.known_until, False, skip_missed=True)
        assert event is not None
        got.append(event)
    ticks = [e.position for e in got if isinstance(e, Tick)]
    # the window opens at 0 and is re-based at 6 s: the tick there runs first (without the bound every
    # tick up to the re-base was passed over and nothing was final when it came)
    assert ticks == [6 * S]


def test_speech_read_after_a_cut_point_counts_for_the_window_reopened_there() -> None:
    # a window cut at its quietest point behind the reading and reopened there: the frames already read
    # after that point are the new window's, and a word that ends soon after must count as its speech
    # (counted as the cut window's alone, 64 ms were left for 112 ms of speech: under `min_speech`, the
    # last window was never decoded and its word lost)
    config = LiveConfig(
        max_window=seconds_to_samples(6),
        min_window=seconds_to_samples(6),
        commit_step=0,
        utterance_pause=seconds_to_samples(2),
        long_pause=seconds_to_samples(2),
    )
    track = track_of([(6.08, True), (1.0, False)])
    track.finish(track.known_until)
    planner = Planner(config)
    rebase = planner.next_event(track, track.known_until, True)
    assert isinstance(rebase, Rebase)
    at = rebase.position - FRAME - FRAME // 2  # behind the reading, mid-frame (as `quietest_point` gives)
    counted = planner.state.voiced
    first = planner.cut_and_reopen(at, track)
    moved = track.voiced_samples(at, rebase.position, config.silence_threshold)
    assert first.end == at and first.reopen and first.voiced == counted - moved  # moved, not copied
    rest = list(iter(lambda: planner.next_event(track, track.known_until, True), None))
    cut = rest[0]
    assert isinstance(cut, Cut) and cut.start == at and cut.last
    assert cut.voiced == track.voiced_samples(at, track.known_until, config.silence_threshold)
    assert cut.voiced >= config.min_speech
