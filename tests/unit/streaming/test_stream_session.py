from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from stream_app.clients.transcript import TranscriptAssembler
from stream_app.inference.types import DecodeKind, WindowTranscript, Word
from stream_app.streaming import LiveConfig, MergePolicy, StreamSession, run_session, transcribe_chunks
from stream_app.streaming.session import DecodeRequest
from stream_app.testing.fake_model import LoudnessDetector, TruthTranscriber, chunks_of, speech_audio, word_sequence
from stream_app.wire.chunk import SAMPLE_RATE, AudioChunk
from stream_app.wire.segment import TranscriptSegment

CONFIG = LiveConfig.from_seconds()
POLICY = MergePolicy(commit_lookahead=0.5)


def sentence(start: float, text: str, *, word: float = 0.4, space: float = 0.1) -> list[Word]:
    out, t = [], start
    for token in text.split():
        out.append(Word(round(t, 3), round(t + word, 3), token, 0.9))
        t += word + space
    return out


TRUTH = (
    sentence(0.5, "thank you for calling the dental clinic")
    + sentence(5.0, "please arrive ten minutes early so we can update your records")
    + sentence(12.2, "is there anything else I can do for you today")
)


def run(truth: list[Word], chunks: list[AudioChunk], **kw: object) -> list[TranscriptSegment]:
    model = TruthTranscriber(truth, **kw)  # type: ignore[arg-type]
    return list(transcribe_chunks(chunks, model, LoudnessDetector(), CONFIG, POLICY))


def final_words(segments: list[TranscriptSegment]) -> list[str]:
    assembler = TranscriptAssembler(segments[0].stream_id)
    for segment in segments:
        assembler.add(segment)
    return [w.text for s in assembler.final_segments() for w in s.words]


def test_every_word_reaches_a_final_segment_once_and_the_stream_ends() -> None:
    audio = speech_audio(TRUTH, 18.0)
    segments = run(TRUTH, chunks_of(audio))
    assert final_words(segments) == [w.text for w in TRUTH]
    assert segments[-1].is_final and segments[-1].end_of_stream
    assert sum(1 for s in segments if s.end_of_stream) == 1


def test_the_last_sentence_is_final_even_when_the_stream_ends_right_after_it() -> None:
    audio = speech_audio(TRUTH, TRUTH[-1].end + 0.05)
    segments = run(TRUTH, chunks_of(audio))
    assert final_words(segments)[-4:] == ["do", "for", "you", "today"]


@pytest.mark.parametrize("chunk_seconds", [0.02, 0.1, 0.37, 2.0])
def test_finals_do_not_depend_on_the_chunking(chunk_seconds: float) -> None:
    audio = speech_audio(TRUTH, 18.0)
    reference = [(s.segment_id, s.text) for s in run(TRUTH, chunks_of(audio)) if s.is_final]
    got = [(s.segment_id, s.text) for s in run(TRUTH, chunks_of(audio, chunk_seconds=chunk_seconds)) if s.is_final]
    assert got == reference


def test_a_restart_from_any_stored_point_makes_the_same_finals() -> None:
    """The session copied after every step and run on from the copy: the finals never change."""
    audio = speech_audio(TRUTH, 18.0)
    chunks = chunks_of(audio)
    detector = LoudnessDetector()
    straight = [(s.segment_id, s.text) for s in run(TRUTH, chunks) if s.is_final]
    for crash_at in range(0, len(chunks), 17):
        model = TruthTranscriber(TRUTH, jitter=0.1)
        session = StreamSession("s", CONFIG, POLICY)
        out: list[TranscriptSegment] = []
        for i, chunk in enumerate(chunks):
            if i == crash_at:
                snapshot = copy.deepcopy(session)
                out_before = list(out)
            session.feed(chunk)
            out.extend(run_session(session, model, detector))
        session = snapshot
        out = out_before
        for chunk in chunks[crash_at:]:
            session.feed(chunk)
            out.extend(run_session(session, model, detector))
        assert [(s.segment_id, s.text) for s in out if s.is_final] == straight or crash_at == 0


def test_quiet_speech_is_heard_like_loud_speech() -> None:
    quiet = sentence(1.0, "a quiet voice at the end", word=0.35)
    audio = speech_audio(TRUTH[:7], 5.0, level=0.2)
    audio = np.concatenate([audio, speech_audio([Word(w.start, w.end, w.text, 1) for w in quiet], 5.0, level=0.003)])
    truth = TRUTH[:7] + [Word(w.start + 5.0, w.end + 5.0, w.text, 0.9) for w in quiet]
    segments = run(truth, chunks_of(audio))
    assert final_words(segments) == [w.text for w in truth]


def test_lost_audio_is_a_gap_on_the_topic() -> None:
    audio = speech_audio(TRUTH, 18.0)
    chunks = [c for c in chunks_of(audio) if c.seq not in range(40, 43)]
    # the worker closes a stream whose hole never fills; here: 70 chunks later the hole is declared lost
    segments = run(TRUTH, chunks)
    gaps = [g for s in segments if s.is_final for g in s.gaps]
    assert [(g.reason, g.start, g.end) for g in gaps] == [("lost_chunks", 4.0, 4.3)]


def test_a_preview_shows_words_the_final_then_holds() -> None:
    audio = speech_audio(TRUTH, 18.0)
    model = TruthTranscriber(TRUTH)
    segments = list(transcribe_chunks(chunks_of(audio), model, LoudnessDetector(), CONFIG, POLICY, previews=True))
    shown = {w.text for s in segments if not s.is_final for w in s.words}
    finals = set(final_words(segments))
    assert finals == {w.text for w in TRUTH}
    # a preview may show a word its audio has only begun (a prefix of it), never another word
    assert shown and all(any(f.startswith(word) for f in finals) for word in shown)
    assert any(kind == DecodeKind.PREVIEW.value for kind, *_ in model.log)


def test_a_failed_cut_is_a_gap_and_the_stream_goes_on() -> None:
    audio = speech_audio(TRUTH, 18.0)
    model = TruthTranscriber(TRUTH, fail=lambda r: r.kind is DecodeKind.CUT and r.stop < 5 * 16000)
    session = StreamSession("s", CONFIG, POLICY)
    out: list[TranscriptSegment] = []
    for chunk in chunks_of(audio):
        session.feed(chunk)
        _, samples = session.speech_needed()
        if samples.shape[0]:
            session.add_speech(*LoudnessDetector()(samples))
        while (plan := session.plan()).request is not None:
            out.extend(plan.segments)
            try:
                out.extend(session.complete(plan.request, model(plan.request)))
            except RuntimeError as error:
                out.extend(session.fail(plan.request, "inference_failed", str(error)))
        out.extend(plan.segments)
    gaps = [g for s in out if s.is_final for g in s.gaps]
    assert [g.reason for g in gaps] == ["inference_failed"]
    assert final_words(out)[-4:] == ["do", "for", "you", "today"]


def test_word_spec_helper_round_trips() -> None:
    assert [w.text for w in word_sequence([(0, 1, "a"), (1, 2, "b")])] == ["a", "b"]


def test_a_decode_rereads_at_most_its_context_of_final_words() -> None:
    config = LiveConfig.from_seconds(decode_context=1.0)
    model = TruthTranscriber(TRUTH)
    requests = []

    def transcribe(request: DecodeRequest) -> WindowTranscript:
        requests.append(request)
        return model(request)

    segments = list(transcribe_chunks(chunks_of(speech_audio(TRUTH, 18.0)), transcribe, LoudnessDetector(), config))
    assert final_words(segments) == [w.text for w in TRUTH]
    anchored = [r for r in requests if r.prefix and r.prefix[0] is not TRUTH[0]]
    assert anchored
    for request in anchored:
        first = request.prefix[0]
        # it starts in the silence before a final word, keeping at most a second of final words (or one word)
        assert request.start / 16000 <= first.start
        assert len(request.prefix) == 1 or request.prefix[-1].end - first.start <= 1.0 + 0.05
        # it reads at most the context before the newest final word, or the window from its start (the
        # lead before the first word) when every final word lies within the context
        lead = config.speech_lead / 16000
        assert len(request.prefix) == 1 or request.prefix[-1].end - request.start / 16000 <= 1.0 + lead + 0.05
        before = [w for w in TRUTH if w.end <= request.start / 16000]
        assert not before or before[-1].end <= request.start / 16000 <= first.start


def test_a_decode_whose_final_words_all_lie_within_its_context_reads_the_whole_window() -> None:
    # a window's first words are within 4 s of its newest final word: no final word is left out (before,
    # the first one always was, and Whisper heard the sentence from its second word)
    config = LiveConfig.from_seconds(decode_context=4.0, force_final_words=False, commit_lookahead=2.0)
    model = TruthTranscriber(TRUTH)
    requests: list[DecodeRequest] = []

    def transcribe(request: DecodeRequest) -> WindowTranscript:
        requests.append(request)
        return model(request)

    chunks = chunks_of(speech_audio(TRUTH, 18.0))
    policy = MergePolicy(commit_lookahead=2.0)
    segments = list(transcribe_chunks(chunks, transcribe, LoudnessDetector(), config, policy))
    assert final_words(segments) == [w.text for w in TRUTH]
    # the first sentence (0.5-3.9 s) is the first window: while its final words end by 4.5 s, all lie within 4 s
    first = [r for r in requests if r.prefix and r.prefix[-1].end <= 4.5 and r.stop / 16000 < 5.0]
    assert len(first) >= 2 and all(len(r.prefix) >= 2 for r in first[1:])
    assert all(r.prefix[0].text == "thank" and r.start / 16000 < 0.5 for r in first)


def test_without_a_decode_context_every_decode_reads_its_whole_window() -> None:
    config = LiveConfig.from_seconds(decode_context=0.0)
    model = TruthTranscriber(TRUTH)
    segments = list(transcribe_chunks(chunks_of(speech_audio(TRUTH, 18.0)), model, LoudnessDetector(), config))
    assert final_words(segments) == [w.text for w in TRUTH]
    ticks = [(kind, start) for kind, start, _, _ in model.log if kind == DecodeKind.TICK.value]
    assert len({start for _, start in ticks}) < len(ticks)  # ticks of one window all start at its start


def _decodes_with_previews(config: LiveConfig) -> tuple[list[DecodeRequest], list[TranscriptSegment]]:
    model, requests = TruthTranscriber(TRUTH), []

    def transcribe(request: DecodeRequest) -> WindowTranscript:
        requests.append(request)
        return model(request)

    chunks = chunks_of(speech_audio(TRUTH, 18.0))
    segments = list(transcribe_chunks(chunks, transcribe, LoudnessDetector(), config, POLICY, previews=True))
    return requests, segments


def test_a_preview_rereads_at_most_its_own_context_and_changes_no_final() -> None:
    whole = LiveConfig.from_seconds(decode_context=0.0, force_final_words=False)
    short = dataclasses.replace(whole, preview_context=16000)
    whole_requests, whole_segments = _decodes_with_previews(whole)
    short_requests, short_segments = _decodes_with_previews(short)

    def spans(requests: list[DecodeRequest], *kinds: DecodeKind) -> list[tuple[str, int, int]]:
        return [(r.kind.value, r.start, r.stop) for r in requests if r.kind in kinds]

    # commit decodes read the whole window either way, and make the same finals
    commits = (DecodeKind.TICK, DecodeKind.CUT)
    assert spans(short_requests, *commits) == spans(whole_requests, *commits)
    assert [s.text for s in short_segments if s.is_final] == [s.text for s in whole_segments if s.is_final]
    assert final_words(short_segments) == [w.text for w in TRUTH]
    # a preview starts in the silence before a final word, keeping at most a second of final words (or one)
    previews = [r for r in short_requests if r.kind is DecodeKind.PREVIEW]
    later = [r for r in previews if r.prefix and r.prefix[0] is not TRUTH[0] and r.prefix[0].start > 0.5]
    assert later, "no preview read less than its whole window"
    for request in later:
        assert len(request.prefix) == 1 or request.prefix[-1].end - request.start / 16000 <= 1.0 + 0.05
        before = [w for w in TRUTH if w.end <= request.start / 16000]
        assert before and before[-1].end <= request.start / 16000 <= request.prefix[0].start
    # and what they show is the true words after the final ones
    shown = {w.text for s in short_segments if not s.is_final for w in s.words}
    assert shown and all(any(t.text.startswith(word) for t in TRUTH) for word in shown)


@pytest.mark.parametrize("lead", [0.2, 0.5, 0.7])
def test_an_open_window_never_starts_before_the_audio_held(lead: float) -> None:
    # a long pause releases the audio before the next speech; the next window opens speech_lead before
    # it on the feature grid, which reached a few samples past what was released (a stored state like
    # that was refused on restore and the stream started afresh)
    truth = sentence(0.5, "one two three") + sentence(6.5, "four five six seven") + sentence(11.0, "eight nine ten")
    config = LiveConfig.from_seconds(speech_lead=lead)
    model = TruthTranscriber(truth)
    session: StreamSession | None = None
    for chunk in chunks_of(speech_audio(truth, truth[-1].end + 1.0)):
        if session is None:
            session = StreamSession(chunk.stream_id, config, POLICY)
        session.feed(chunk)
        list(run_session(session, model, LoudnessDetector()))
        start = session.planner.state.window_start
        assert start is None or start >= session.buffer.base, (start, session.buffer.base)


@pytest.mark.parametrize("chunk_seconds", [0.02, 0.37, 2.0])
def test_the_decodes_that_make_finals_do_not_depend_on_the_chunking(chunk_seconds: float) -> None:
    # audio released during a pause depended on how far the planner had scanned when it happened, and a
    # window opening on the feature grid before that was moved to the first sample held: its decodes read
    # other samples than in a run whose audio came in other pieces (a replay, a backlog after an outage)
    truth = sentence(0.5, "one two three") + sentence(6.5, "four five six seven") + sentence(11.0, "eight nine ten")
    audio = speech_audio(truth, truth[-1].end + 1.0)

    def decodes(chunks: list[AudioChunk]) -> list[tuple[str, float, float]]:
        model = TruthTranscriber(truth)
        list(transcribe_chunks(chunks, model, LoudnessDetector(), CONFIG, POLICY))
        return [(kind, start, stop) for kind, start, stop, _ in model.log if kind != DecodeKind.PREVIEW.value]

    assert decodes(chunks_of(audio, chunk_seconds=chunk_seconds)) == decodes(chunks_of(audio))


def _interleaved(truth: list[Word], audio: np.ndarray, seed: int) -> tuple[list[tuple[str, int, int]], list[str]]:
    """Run a session as the worker does, audio arriving while a decode runs: ``seed`` picks the schedule.

    Seed 0 is the calm schedule: one chunk, then every decode at once. Other seeds feed 0-6 chunks
    between steps, keep a decode running over several of them and skip previews at random.
    """
    rng = np.random.default_rng(seed)
    model, detector = TruthTranscriber(truth), LoudnessDetector()
    chunks = chunks_of(audio, chunk_seconds=0.1)
    session, pending, finals, fed = None, None, [], 0
    while session is None or not session.finished or pending is not None:
        for _ in range(int(rng.integers(0, 7)) if seed else 1):
            if fed < len(chunks):
                session = session or StreamSession(chunks[fed].stream_id, CONFIG, POLICY)
                session.feed(chunks[fed])
                fed += 1
        if session is None:
            continue
        if pending is None:
            _, samples = session.speech_needed()
            if samples.shape[0]:
                session.add_speech(*detector(samples, session.track.model_state))
            plan = session.plan(previews=bool(rng.random() < 0.5) if seed else True)
            finals += [s.segment_id + ":" + s.text for s in plan.segments if s.is_final]
            pending = plan.request
        elif not seed or rng.random() < 0.6:
            finals += [s.segment_id + ":" + s.text for s in session.complete(pending, model(pending)) if s.is_final]
            pending = None
    decodes = [(kind, start, stop) for kind, start, stop, _ in model.log if kind != DecodeKind.PREVIEW.value]
    return decodes, finals


def test_decodes_and_finals_do_not_depend_on_when_audio_arrives_while_decodes_run() -> None:
    truth = (
        sentence(0.5, "one two three four five six")
        + sentence(5.2, "seven eight nine ten eleven")
        + sentence(8.9, "twelve thirteen fourteen")
        + sentence(13.5, "fifteen sixteen seventeen eighteen nineteen twenty")
        + sentence(19.0, "a b c d e f g h i j k l")
    )
    audio = speech_audio(truth, truth[-1].end + 1.5)
    calm = _interleaved(truth, audio, 0)
    assert [text.split(":", 1)[1] for text in calm[1] if ":" in text]  # finals were made
    for seed in range(1, 25):
        assert _interleaved(truth, audio, seed) == calm, seed


def test_a_free_decode_that_hears_the_last_final_word_differently_is_counted_and_loses_no_word() -> None:
    config = LiveConfig.from_seconds(decode_context=0.0, force_final_words=False)
    model = TruthTranscriber(TRUTH)

    def misheard(request: DecodeRequest) -> WindowTranscript:
        result = model(request)
        if not request.prefix:
            return result
        end = request.prefix[-1].end  # words and final words are on the stream's clock
        words = tuple(dataclasses.replace(w, text=w.text + "h") if w.end <= end else w for w in result.words)
        return dataclasses.replace(result, words=words, text=" ".join(w.text for w in words))

    session: StreamSession | None = None
    segments: list[TranscriptSegment] = []
    for chunk in chunks_of(speech_audio(TRUTH, 18.0)):
        if session is None:
            session = StreamSession(chunk.stream_id, config, POLICY)
        session.feed(chunk)
        segments += run_session(session, misheard, LoudnessDetector())
    assert session is not None and session.unanchored > 0
    assert final_words(segments) == [w.text for w in TRUTH]  # told apart by time: nothing dropped or repeated


def test_only_commit_decodes_count_as_unanchored() -> None:
    # a preview reads 2 s of final words and may mishear them: it decides no commit point, so it is not counted
    config = LiveConfig.from_seconds(decode_context=0.0, force_final_words=False, preview_context=2.0)
    model, misheard = TruthTranscriber(TRUTH), []

    def previews_mishear(request: DecodeRequest) -> WindowTranscript:
        result = model(request)
        if request.kind is not DecodeKind.PREVIEW or not request.prefix:
            return result
        misheard.append(request)
        words = tuple(dataclasses.replace(w, text=w.text + "h") for w in result.words)
        return dataclasses.replace(result, words=words, text=" ".join(w.text for w in words))

    session = StreamSession("s", config, POLICY)
    for chunk in chunks_of(speech_audio(TRUTH, 18.0)):
        session.feed(chunk)
        list(run_session(session, previews_mishear, LoudnessDetector(), previews=True))
    previews = len(misheard)
    assert previews > 0 and session.unanchored == 0


def test_a_word_said_again_and_again_stays_as_often_as_said_when_decode_times_shift() -> None:
    # found by hypothesis (LocalAgreement with settling, free decodes of the whole window, times shifted
    # by up to 0.25 s per decode): before the anchor counted the reading's edits, one "no" came out twice
    truth = word_sequence(
        [
            *[(0.0, 0.5, "no0"), (0.625, 1.125, "no"), (1.172, 1.672, "no"), (2.172, 2.672, "no")],
            *[(3.172, 3.672, "no"), (3.797, 3.922, "no"), (4.047, 4.547, "no6"), (4.672, 5.172, "no7")],
            (5.297, 5.797, "no8"),
        ]
    )
    config = LiveConfig.from_seconds(
        force_final_words=False, decode_context=0.0, utterance_pause=2.0, commit_lookahead=2.0
    )
    policy = MergePolicy(commit_lookahead=2.0, settle_after=1)
    model = TruthTranscriber(truth, jitter=0.25)
    chunks = chunks_of(speech_audio(truth, 6.359375))
    segments = list(transcribe_chunks(chunks, model, LoudnessDetector(), config, policy))
    assert final_words(segments) == [w.text for w in truth]


def test_a_window_re_based_past_its_maximum_keeps_a_word_the_newest_decode_missed() -> None:
    # twenty seconds of "no" without a pause: the window reaches its maximum and is re-based after a final
    # word. Every other tick misses the short "no" at 4.75 s, so the decodes never agree past it, and the
    # newest one's first word after the final "no" at 4.0 s starts at 5.5 s: a re-base midway into that
    # gap would cut the missed word out of every later decode
    truth = [Word(float(t), t + 0.5, "no", 0.9) for t in range(5)] + [Word(4.75, 5.0, "no", 0.9)]
    truth += [Word(5.5 + t, 6.0 + t, "no", 0.9) for t in range(20)]
    seconds = 26.0
    audio = sum(speech_audio([w], seconds, level=0.1, seed=i) for i, w in enumerate(truth))

    def alternate(request: DecodeRequest, words: list[Word]) -> list[Word]:
        missed = request.kind is not DecodeKind.CUT and (request.stop // SAMPLE_RATE) % 2 == 0
        return [w for w in words if not (missed and w.start == 4.75)]

    config = LiveConfig.from_seconds(
        force_final_words=False, decode_context=0.0, utterance_pause=2.0, commit_lookahead=2.0
    )
    model = TruthTranscriber(truth, revise=alternate)
    segments = list(
        transcribe_chunks(chunks_of(audio), model, LoudnessDetector(), config, MergePolicy(commit_lookahead=2.0))
    )
    assert [w.start for s in segments if s.is_final for w in s.words] == [w.start for w in truth]


def test_a_short_word_across_a_window_s_maximum_is_decoded_in_the_window_cut_there() -> None:
    # no commit decodes, so nothing is final when the window reaches its 20 s maximum and it is cut at
    # its quietest point, just before a short last word whose first frames the planner had already read:
    # that speech counted as the cut window's only, the reopened window held less than `min_speech` and
    # was never decoded (found by hypothesis with every other tick missing the first word)
    truth = [Word(1.0 + 0.5 * i, 1.25 + 0.5 * i, "no", 0.9) for i in range(39)] + [Word(20.5, 20.7, "go", 0.9)]
    audio = sum(speech_audio([w], 22.0, level=0.1, seed=i) for i, w in enumerate(truth))
    config = LiveConfig.from_seconds(commit_step=0.0, preview_step=0.0, utterance_pause=2.0, long_pause=2.0)
    model = TruthTranscriber(truth)
    segments = list(transcribe_chunks(chunks_of(audio), model, LoudnessDetector(), config, POLICY))
    assert [c[0] for c in model.log] == ["cut", "cut"]  # the window cut at its maximum, then the rest
    assert final_words(segments) == [w.text for w in truth]


def test_a_window_whose_ticks_heard_words_is_decoded_at_its_cut_however_little_speech_the_vad_found() -> None:
    # a quiet word the detector hears only 64 ms of: under `min_speech` a cut decodes nothing (a click),
    # but a tick heard the word and showed it, so the cut decodes it and the final holds it
    truth = [Word(1.0, 1.6, "whispered", 0.9)]
    audio = speech_audio([Word(1.5, 1.564, "", 0.9)], 4.0, level=0.1)
    config = LiveConfig.from_seconds(preview_step=0.0)
    model = TruthTranscriber(truth)
    segments = list(transcribe_chunks(chunks_of(audio), model, LoudnessDetector(), config, POLICY))
    assert [s.text for s in segments if not s.is_final] == ["whispered"]
    assert final_words(segments) == ["whispered"]
