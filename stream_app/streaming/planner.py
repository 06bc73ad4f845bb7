"""The live rule: which decodes a stream's audio needs, decided from its speech probabilities alone.

The planner reads the stream's `SpeechTrack` frame by frame (32 ms each) and stops at the next
event; the session decodes it and only then asks for the next one, so every decision sees the
results before it. Unless a stream catches up (below), nothing depends on when frames arrived or on
how busy the model is, so a replay of the same audio makes the same events, decodes and finals.

* **Windows.** A window opens ``speech_lead`` before the first voiced frame after a cut (never before
  that cut). A silence of ``utterance_pause`` is a **pause**: the window is decoded up to
  ``speech_tail`` after the speech before it and every word of it becomes final, while the window
  stays open, so the next words are decoded with what came before. The window is **cut** there
  instead once its speech spans ``min_window``, or after any silence of ``long_pause``. A window that
  reaches ``max_window`` is **re-based** (the session moves its start into a gap between two words
  already final, or cuts it at its quietest frame when it has fewer than two).
* **Commit decodes.** Inside an open window, at every multiple of ``commit_step`` on the stream's
  grid that has speech in the step before it (and at least ``min_decode`` of window before it), the
  window so far is decoded: a **tick**. With ``commit_step_growth`` the step between ticks grows with
  the window's span (`LiveConfig.commit_stride`), still on the grid. What two consecutive ticks agree on becomes final.
* **Catching up.** A stream whose heard audio already reaches the tick after a due one (the model
  fell behind, or the stream moved to another replica) may pass over the due one
  (``skip_missed``): it decodes the window once, at the newest tick it has speech for, instead of
  once per step it missed, so its cost per audio second falls as it falls behind and it catches up.
  Ticks are then a function of when audio arrived too; replays stay exact because a step's state is
  stored with the segments it publishes (`stream_app.worker.steps`), so no published step is planned again.
* **End.** Once the stream has ended and every frame is known, an open window is cut at the end of
  the stream, then the stream's end is signalled.

Previews (best effort, between ticks) are not the planner's: they change no state it keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

from stream_app.streaming.config import LiveConfig
from stream_app.streaming.speech import FRAME, SpeechTrack

FEATURE_HOP = 160  # window starts are whole mel frames (10 ms): features line up on the stream's grid


@dataclass(frozen=True)
class Tick:
    """Decode the open window up to ``position`` and commit what agrees with the previous tick."""

    position: int


@dataclass(frozen=True)
class Cut:
    """Decode the open window up to ``end`` and commit all of it.

    ``voiced`` is the window's speech in samples (too little and nothing is decoded), ``reopen``
    says the next window starts at ``end`` at once (speech goes on), ``last`` that the stream ends here.
    """

    end: int
    start: int = 0  # the window's first sample
    voiced: int = 0
    reopen: bool = False
    last: bool = False


@dataclass(frozen=True)
class Pause:
    """A pause inside the open window: decode it up to ``end`` and commit all of it, the window stays open.

    ``voiced`` is the speech since the window's last commit of everything (too little: no decode).
    """

    end: int
    voiced: int = 0


@dataclass(frozen=True)
class Rebase:
    """The open window reached its maximum length at ``position``: move its start or cut it."""

    position: int


@dataclass(frozen=True)
class End:
    """The stream ended at ``position``: every word is final; emit the end-of-stream segment."""

    position: int


Event = Tick | Pause | Cut | Rebase | End


@dataclass
class PlannerState:
    """Where the planner stands: the frames read, the open window and the speech/silence run in it."""

    scanned: int = 0  # frames read so far (index of the next frame)
    window_start: int | None = None  # first sample of the open window; None between windows
    in_speech: bool = False
    voiced: int = 0  # voiced samples in the open window
    last_voiced_end: int = 0  # stream position after the latest voiced frame
    silence_start: int | None = None  # where the current silence (after speech) began
    next_tick: int = 0  # next commit-step grid position
    floor: int = 0  # no window starts before this (the previous window's end)
    ended: bool = False  # the end event was given
    paused: bool = False  # the current silence already made a pause commit


class Planner:
    """Turns a stream's speech probabilities into decode events; see the module docstring."""

    def __init__(self, config: LiveConfig, state: PlannerState | None = None) -> None:
        self.config = config
        self.state = state or PlannerState()

    @property
    def window_open(self) -> bool:
        """Whether a window is open (speech started and its cut has not come yet)."""
        return self.state.window_start is not None

    def next_event(
        self,
        track: SpeechTrack,
        stream_end: int,
        stream_ended: bool,
        stop_at: int | None = None,
        *,
        skip_missed: bool = False,
    ) -> Event | None:
        """Read frames until the next event (None: more audio is needed first, or ``stop_at`` was reached).

        ``skip_missed``: a tick whose following tick the heard audio already reaches is passed over
        (see the module docstring).
        """
        s, cfg = self.state, self.config
        while s.scanned < track.frames:
            start = track.position(s.scanned)
            if stop_at is not None and start >= stop_at:
                return None
            if s.window_start is not None:
                tick = self._due_tick(start, track if skip_missed else None)
                if tick is not None:
                    return tick
                if start - s.window_start >= cfg.max_window:
                    return Rebase(start)
            event = self._read_frame(track, s.scanned, start)
            s.scanned += 1
            if event is not None:
                return event
        if not stream_ended or not track.complete:
            return None
        if stop_at is not None:
            return None  # the caller first attaches what lies at ``stop_at``
        if s.window_start is not None:
            cut = self._close(max(s.window_start, stream_end))
            return Cut(cut.end, cut.start, cut.voiced, last=True)
        if not s.ended:
            s.ended = True
            return End(stream_end)
        return None

    def _due_tick(self, position: int, heard: SpeechTrack | None = None) -> Tick | None:
        """Return the tick whose grid position the reading has passed, if it has speech before it.

        With ``heard`` (the audio heard so far), a tick is passed over when the tick after it is due
        on that audio too: the window is decoded once, at the newer one.
        """
        s, cfg = self.state, self.config
        while cfg.commit_step and s.window_start is not None and s.next_tick <= position:
            g = s.next_tick
            s.next_tick += cfg.commit_stride(g - s.window_start)
            if g - s.window_start >= cfg.min_decode and s.last_voiced_end > g - cfg.commit_step:
                if heard is not None and self._tick_follows(heard, s.next_tick):
                    continue
                return Tick(g)  # speech in the (base) step before it: else nothing new to decode
        return None

    def _tick_follows(self, heard: SpeechTrack, following: int) -> bool:
        """Whether the reading will reach the grid position ``following`` on the audio heard, with speech before it."""
        if following > heard.known_until - FRAME:  # no frame heard starts there: that tick is not due yet
            return False
        start = self.state.window_start
        if start is not None and following > start + self.config.max_window:
            return False  # the window is re-based before that tick: this one makes its words final
        probs = heard.window(following - self.config.commit_step, following)
        return bool(probs.shape[0]) and float(probs.max()) >= self.config.speech_threshold

    def _read_frame(self, track: SpeechTrack, frame: int, start: int) -> Event | None:
        s, cfg = self.state, self.config
        prob = track.prob(frame)
        end = start + FRAME
        voiced = prob >= (cfg.silence_threshold if s.in_speech else cfg.speech_threshold)
        if s.window_start is None:
            if voiced:
                self._open(max(s.floor, start - cfg.speech_lead), track.origin)
                self._voice(end)
            return None
        if voiced:
            self._voice(end)
            return None
        if s.in_speech or s.silence_start is None:
            s.in_speech = False
            s.silence_start = s.last_voiced_end if s.last_voiced_end > s.window_start else start
        silence = end - s.silence_start
        spoken = s.silence_start - s.window_start
        if silence >= cfg.long_pause or (silence >= cfg.utterance_pause and spoken >= cfg.min_window):
            return self._close(s.silence_start + cfg.speech_tail)
        if silence >= cfg.utterance_pause and not s.paused:
            s.paused = True
            heard, s.voiced = s.voiced, 0
            return Pause(s.silence_start + cfg.speech_tail, heard)
        return None

    def _voice(self, end: int) -> None:
        s = self.state
        s.paused = False
        s.in_speech = True
        s.silence_start = None
        s.last_voiced_end = end
        s.voiced += FRAME

    def window_start_for(self, start: int, origin: int) -> int:
        """Where a window wanting to start at ``start`` opens: on the feature grid, never before the floor."""
        return max(self.state.floor, origin + (start - origin) // FEATURE_HOP * FEATURE_HOP)

    def _open(self, start: int, origin: int) -> None:
        s, step = self.state, self.config.commit_step
        start = self.window_start_for(start, origin)
        s.window_start = start
        s.voiced = 0
        s.in_speech = False
        s.silence_start = None
        if step:
            s.next_tick = origin + ((start - origin) // step + 1) * step

    def _close(self, end: int) -> Cut:
        s = self.state
        voiced, start = s.voiced, s.window_start or 0
        s.window_start = None
        s.floor = end
        s.in_speech = False
        s.silence_start = None
        return Cut(end, start, voiced)

    # ---- re-basing (the session decides where) ------------------------------------------------------

    def move_start(self, start: int) -> None:
        """Move the open window's start to ``start`` (between two words already final)."""
        s = self.state
        if s.window_start is not None and start > s.window_start:
            s.window_start = start
            s.floor = start

    def close_at(self, end: int) -> None:
        """Close the open window at ``end`` (its last decode failed): the next speech opens a new one."""
        if self.state.window_start is not None:
            self._close(end)

    def cut_and_reopen(self, at: int, track: SpeechTrack) -> Cut:
        """Cut the open window at ``at`` and open the next one there at once (speech goes on).

        The frames already read after ``at`` belong to the next window, and so does their speech (counted at
        the lower threshold: speech may have begun before ``at``), moved out of the cut window's count:
        counted as the cut window's, a short word after the cut left the next window below ``min_speech``
        and it was never decoded.
        """
        s = self.state
        step = self.config.commit_step
        moved = track.voiced_samples(at, track.position(s.scanned), self.config.silence_threshold)
        voiced, start = max(0, s.voiced - moved), s.window_start or 0
        s.floor = at
        s.window_start = at
        s.voiced = moved
        s.silence_start = None
        while step and s.next_tick <= at:
            s.next_tick += step
        return Cut(at, start, voiced, reopen=True)

    def quietest_point(self, track: SpeechTrack, start: int, stop: int) -> int:
        """Return the frame boundary in ``[start, stop)`` after the least voiced frame (latest on ties)."""
        probs = track.window(start, stop)
        if probs.shape[0] == 0:
            return stop
        first = max(track.frame_at(start), track.first)
        best = int(len(probs) - 1 - int(probs[::-1].argmin()))
        return track.position(first + best) + FRAME // 2
