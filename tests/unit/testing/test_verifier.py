"""The chaos verifier's definitions, on hand-made transcripts topics."""

from __future__ import annotations

import orjson

from stream_app.testing.segments import make_segment
from stream_app.testing.topic_reader import TopicRecord
from stream_app.testing.verifier import Verdict, census_chunks, dead_letter_reasons, group_segments, verify
from stream_app.wire.segment_codec import encode_segment

S1 = "The morning train left the station a few minutes late because of the fog."
S2 = "Please remember to close the windows before you leave the office tonight."
S3 = "Our team finished the report and sent it to the customer on Friday."


def _records(stream: str, texts: list[str], *, eos: bool = True, ids: list[int] | None = None) -> list[TopicRecord]:
    """Final segments ``texts`` (ids 0..n-1 unless given), then an empty end-of-stream segment."""
    indexes = ids or list(range(len(texts)))
    out = [_record(stream, encode_segment(make_segment(stream, i, t))) for i, t in zip(indexes, texts, strict=True)]
    if eos:
        out.append(_record(stream, encode_segment(make_segment(stream, len(texts), "", eos=True))))
    return out


def _record(stream: str, value: bytes, offset: int = 0) -> TopicRecord:
    return TopicRecord(0, offset, stream.encode(), value, ())


def _verdict(reference: list[TopicRecord], disturbed: list[TopicRecord], streams: tuple[str, ...] = ("a",)) -> Verdict:
    return verify(group_segments(reference), group_segments(disturbed), streams)


def test_the_same_output_twice_is_a_perfect_match() -> None:
    records = _records("a", [S1, S2, S3])
    verdict = _verdict(records, records + records)  # replayed whole: every final twice, same texts
    (stream,) = verdict.streams
    assert (verdict.streams_complete, verdict.missing_final_segments, verdict.conflicting_final_ids) == (1, 0, 0)
    assert verdict.extra_final_segments == 0
    assert verdict.wer_vs_reference == 0.0
    assert (stream.reference_finals, stream.finals, stream.repeated_finals) == (4, 4, 4)


def test_a_lost_sentence_is_one_missing_final_segment() -> None:
    verdict = _verdict(_records("a", [S1, S2, S3]), _records("a", [S1, "", S3]))
    assert verdict.missing_final_segments == 1
    assert verdict.streams[0].missing == (S2,)
    assert verdict.extra_final_segments == 0
    assert verdict.wer_vs_reference == 12 / 39  # S2's 12 words deleted, of 14 + 12 + 13


def test_words_lost_across_an_outage_count_when_most_of_a_segment_is_gone() -> None:
    # The example: "with a chance of frost in sheltered areas on Sunday morning" -> "on the morning."
    reference = _records("a", [S1, "with a chance of frost in sheltered areas on Sunday morning"])
    disturbed = _records("a", [S1, "on the morning."])
    assert _verdict(reference, disturbed).missing_final_segments == 1


def test_a_changed_word_is_an_error_not_a_missing_segment() -> None:
    changed = S2.replace("windows", "window")
    verdict = _verdict(_records("a", [S1, S2]), _records("a", [S1, changed]))
    assert verdict.missing_final_segments == 0
    assert verdict.streams[0].errors == 1


def test_other_segment_boundaries_and_ids_still_match_by_text_and_position() -> None:
    # A restarted stream cut its windows elsewhere and numbered them in a new epoch: same words.
    reference = _records("a", [S1, S2, S3])
    halves = [S1 + " " + " ".join(S2.split()[:5]), " ".join(S2.split()[5:]), S3]
    disturbed = [
        _record("a", orjson.dumps({"segment_id": f"a:1:{i}", "is_final": True, "text": t, "start": i, "end": i + 1}))
        for i, t in enumerate(halves)
    ]
    disturbed.append(
        _record(
            "a", orjson.dumps({"segment_id": "a:1:3", "is_final": True, "text": "", "end_of_stream": True, "start": 9})
        )
    )
    verdict = _verdict(reference, disturbed)
    assert (verdict.missing_final_segments, verdict.extra_final_segments, verdict.wer_vs_reference) == (0, 0, 0.0)
    assert verdict.streams_complete == 1


def test_a_sentence_published_elsewhere_in_the_stream_does_not_match_its_place() -> None:
    # S2 and S3 swapped in stream time: each stands where the other should, so both are missing there
    # (the alignment substitutes one sentence for the other) and both are extra where they stand.
    verdict = _verdict(_records("a", [S1, S2, S3]), _records("a", [S1, S3, S2]))
    assert verdict.streams[0].missing == (S2, S3)
    assert verdict.streams[0].extra == (S3, S2)


def test_an_id_published_final_with_two_texts_is_a_conflict() -> None:
    reference = _records("a", [S1, S2])
    replay = _records("a", [S1, S3])  # after a crash, id a:1 came back with other text
    verdict = _verdict(reference, reference + replay)
    assert verdict.conflicting_final_ids == 1
    assert verdict.missing_final_segments == 0  # the first text published under each id is the one read


def test_interim_segments_are_not_finals_and_an_unended_stream_is_incomplete() -> None:
    interim = _record("a", encode_segment(make_segment("a", 1, "please remember", final=False)))
    verdict = _verdict(_records("a", [S1, S2]), [*_records("a", [S1], eos=False), interim])
    assert verdict.streams_complete == 0
    assert verdict.missing_final_segments == 1
    assert verdict.streams[0].finals == 1


def test_a_stream_the_disturbed_run_never_published_misses_everything() -> None:
    verdict = _verdict(_records("a", [S1]) + _records("b", [S2, S3]), _records("a", [S1]), ("a", "b"))
    assert verdict.streams_complete == 1
    assert verdict.missing_final_segments == 2
    assert verdict.wer_vs_reference == 25 / 39


def test_records_that_are_not_segments_are_counted_not_fatal() -> None:
    output = group_segments([_record("a", b"not json"), _record("a", b"[1, 2]"), _record("a", b'{"text": "x"}')])
    assert output.unreadable == 3
    assert output.streams == {}


def _chunk(stream: str, seq: int, kind: bytes = b"dev.stream-app.audio.chunk") -> TopicRecord:
    return TopicRecord(0, 0, stream.encode(), b"\0\0", (("ce_type", kind), ("ce_seq", str(seq).encode())))


def test_chunk_census_counts_lost_and_doubled_chunks() -> None:
    records = [_chunk("a", s) for s in (0, 1, 1, 3)] + [_chunk("b", 0), _chunk("other", 0), _chunk("a", 9)]
    records.append(_chunk("a", 3, b"dev.stream-app.stream.idle"))  # a worker's idle tick is no chunk
    census = census_chunks(records, {"a": 5, "b": 1})
    assert (census.expected, census.distinct, census.duplicates, census.lost) == (6, 4, 1, 2)


def test_dead_letters_are_counted_by_reason() -> None:
    def letter(reason: bytes) -> TopicRecord:
        return TopicRecord(0, 0, b"a", b"", (("dlq_reason", reason),))

    records = [letter(b"processing_error"), letter(b"bad_seq"), letter(b"processing_error")]
    assert dead_letter_reasons(records) == {"bad_seq": 1, "processing_error": 2}


def _final(stream: str, segment_id: str, text: str, start: float) -> TopicRecord:
    return _record(stream, orjson.dumps({"segment_id": segment_id, "is_final": True, "text": text, "start": start}))


def test_finals_pair_by_place_whatever_offset_named_their_session() -> None:
    reference = [_final("a", "a:0.17:0", S1, 0), _final("a", "a:0.17:1", S2, 5), _final("a", "a:0.930:0", S3, 99)]
    # the same finals, their sessions named after other input offsets (another run, another topic)
    same = [_final("a", "a:3.5:0", S1, 0), _final("a", "a:3.5:1", S2, 5), _final("a", "a:3.41000:0", S3, 99)]
    assert _verdict(reference, same).final_text_mismatches == 0
    other_cut = [_final("a", "a:3.5:0", S1 + " " + S2, 0), _final("a", "a:3.5:1", "", 5)]
    other_cut.append(_final("a", "a:3.41000:0", S3, 99))
    verdict = _verdict(reference, other_cut)
    assert verdict.wer_vs_reference == 0.0  # the same words...
    assert verdict.final_text_mismatches == 2  # ...but two finals of other text: a replay decided them again


def test_a_final_one_run_lacks_is_a_text_mismatch() -> None:
    assert _verdict(_records("a", [S1, S2]), _records("a", [S1])).final_text_mismatches == 2  # S2, and the end moved
