"""A stream session's state, less its audio, as the JSON document the header stores (pure: no I/O).

The header (`stream_app.worker.records`) frames this document with the audio tail and the speech
probabilities; pages and held chunks are separate records. Every number that shapes a decision is
stored exactly (probabilities as float32 bytes, times as the floats the session computed), so a
stream restored on another replica makes the same decisions as the one that wrote it.
"""

from __future__ import annotations

import base64
from dataclasses import fields, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from stream_app.inference.types import Word
from stream_app.streaming.buffer import Loss
from stream_app.streaming.config import LiveConfig
from stream_app.streaming.planner import PlannerState
from stream_app.streaming.speech import SpeechTrack
from stream_app.streaming.state import MergerState
from stream_app.wire.segment import Gap
from stream_app.worker.doc_fields import as_float, as_int, as_str

# Fields are only ever appended: a header written by an earlier release carries a prefix of the list and
# the fields it lacks take their defaults.
CONFIG_FIELDS = tuple(f.name for f in fields(LiveConfig))
PLANNER_FIELDS = tuple(f.name for f in fields(PlannerState))


def config_to_doc(config: LiveConfig) -> list[Any]:
    """Return the live rule as a list of values in `CONFIG_FIELDS` order."""
    return [getattr(config, name) for name in CONFIG_FIELDS]


# Settling (d4272d4) came in the change that appended `commit_step_growth` (0fd27f8, with no release
# between them): a rule stored without that field ran without settling. One stored with it but without
# `settle_after` (be5a202) settled by its replica's configuration, which the header did not keep: the
# restoring replica's value applies (`rule_holds_settling`).
_FIELDS_BEFORE_SETTLING = CONFIG_FIELDS.index("commit_step_growth")


def config_from_doc(values: Any) -> LiveConfig:
    """Read a live rule written by `config_to_doc`.

    A shorter list (an earlier release's) takes what that release ran with for the fields it lacks:
    the defaults, but no settling for a rule of a release before settling existed.
    """
    if not isinstance(values, list) or not 0 < len(values) <= len(CONFIG_FIELDS):
        raise ValueError("live rule has the wrong number of fields")
    config = LiveConfig(**dict(zip(CONFIG_FIELDS, values, strict=False)))
    if len(values) <= _FIELDS_BEFORE_SETTLING:
        config = replace(config, settle_after=0)
    return config


def rule_holds_settling(values: Any) -> bool:
    """Whether a stored rule says how it settles (else it settled as its replica was configured)."""
    return isinstance(values, list) and not _FIELDS_BEFORE_SETTLING < len(values) <= CONFIG_FIELDS.index("settle_after")


def planner_to_doc(state: PlannerState) -> list[Any]:
    """Return the planner's position as a list in `PLANNER_FIELDS` order."""
    return [getattr(state, name) for name in PLANNER_FIELDS]


def planner_from_doc(values: Any) -> PlannerState:
    """Read a planner state written by `planner_to_doc`."""
    if not isinstance(values, list) or not 0 < len(values) <= len(PLANNER_FIELDS):
        raise ValueError("planner state has the wrong number of fields")
    state = PlannerState(**dict(zip(PLANNER_FIELDS, values, strict=False)))
    for name in ("scanned", "voiced", "last_voiced_end", "next_tick", "floor"):
        as_int(getattr(state, name))
    return state


def speech_to_doc(track: SpeechTrack) -> dict[str, Any]:
    """Return the speech track less its probabilities (those go into the header's payload)."""
    return {
        "origin": track.origin,
        "first": track.first,
        "state": base64.b64encode(track.model_state).decode(),
        "complete": track.complete,
        "n": int(track.probs.shape[0]),
    }


def speech_from_doc(doc: Any, probs: npt.NDArray[np.float32]) -> SpeechTrack:
    """Read a speech track written by `speech_to_doc`, with its probabilities."""
    if int(doc["n"]) != probs.shape[0]:
        raise ValueError(f"speech track names {doc['n']} frames, the payload holds {probs.shape[0]}")
    return SpeechTrack(
        origin=as_int(doc["origin"]),
        first=as_int(doc["first"]),
        probs=probs,
        model_state=base64.b64decode(as_str(doc["state"])),
        complete=bool(doc["complete"]),
    )


def merger_to_doc(m: MergerState) -> dict[str, Any]:
    """Return the merger's state: counters, the open window's words, gaps waiting for a segment."""
    return {
        "id": m.stream_id,
        "session": m.session,
        "idx": m.next_index,
        "rev": m.revision,
        "interim": m.interim_text,
        "words": _words(m.committed),
        "hyp": None if m.hypothesis is None else _words(m.hypothesis),
        "hyp_at": m.hypothesis_at,
        "gaps": [[g.start, g.end, g.reason, g.detail] for g in m.gaps],
        "decodes": m.decodes,
        "ended": m.ended,
        "model": [m.model, m.precision, m.language],
    }


def merger_from_doc(m: Any) -> MergerState:
    """Read a merger document written by `merger_to_doc`.

    Raises:
        KeyError, TypeError, ValueError: the document is not one (the caller reports corruption).
    """
    model = m["model"]
    return MergerState(
        stream_id=as_str(m["id"]),
        session=as_str(m["session"]),
        next_index=as_int(m["idx"]),
        revision=as_int(m["rev"]),
        interim_text=as_str(m["interim"]),
        committed=_read_words(m["words"]),
        hypothesis=None if m["hyp"] is None else _read_words(m["hyp"]),
        hypothesis_at=as_int(m["hyp_at"]),
        gaps=[Gap(as_float(a), as_float(b), as_str(r), as_str(d)) for a, b, r, d in m["gaps"]],
        decodes=as_int(m["decodes"]),
        ended=bool(m["ended"]),
        model=as_str(model[0]),
        precision=as_str(model[1]),
        language=as_str(model[2]),
    )


def losses_to_doc(losses: tuple[Loss, ...]) -> list[Any]:
    """Return the audio lost before transcription that the planner has not reached yet."""
    return [[x.start, x.end, x.reason, x.detail] for x in losses]


def losses_from_doc(doc: Any) -> list[Loss]:
    """Read losses written by `losses_to_doc`."""
    return [Loss(as_int(a), as_int(b), as_str(r), as_str(d)) for a, b, r, d in doc]


def _words(words: list[Word]) -> list[list[Any]]:
    return [[w.start, w.end, w.text, w.probability] for w in words]


def _read_words(doc: Any) -> list[Word]:
    return [Word(as_float(s), as_float(e), as_str(t), as_float(p)) for s, e, t, p in doc]
