import orjson
import pytest
from cache_helpers import make_transcript

from stream_app.cache.codec import FORMAT_VERSION, decode_entry, encode_entry, entry_checksum
from stream_app.cache.exceptions import CorruptEntryError


def _entry(body: bytes) -> bytes:
    """An entry of this format around ``body``, with the right checksum: what the fields say is what is tested."""
    return bytes([FORMAT_VERSION]) + entry_checksum(body) + body


def test_round_trip_moves_words_to_the_new_window_start() -> None:
    original = make_transcript(window_start=100.0)
    entry = encode_entry(original, window_start=100.0)
    again = decode_entry(entry, window_start=100.0)
    assert again.words == original.words
    assert again.text == original.text
    assert again.model == "tiny.en" and again.precision == "int8"
    assert again.extra == {"rms": 0.1}
    assert again.cached is True
    assert again.inference_seconds == 0.0

    elsewhere = decode_entry(entry, window_start=7.25)
    assert [w.start for w in elsewhere.words] == [7.25, 7.75, 8.25, 8.75, 9.25]
    assert [w.text for w in elsewhere.words] == [w.text for w in original.words]


def test_entry_stores_the_words_as_decoded_with_their_window_start() -> None:
    entry = encode_entry(make_transcript(window_start=50.0), window_start=50.0)
    assert entry[0] == FORMAT_VERSION
    body = orjson.loads(entry[17:])
    assert body["start"] == 50.0 and body["words"][0][:2] == [50.0, 50.4]


def test_a_replay_gets_its_times_back_bit_for_bit() -> None:
    """Times the transcriber rounded after adding the window start: a double rounding could move them."""
    start = 4.6525
    original = make_transcript(window_start=start)
    odd = type(original)(
        **{
            **original.__dict__,
            "words": tuple(
                type(w)(round(start + 0.0015 * (i + 1), 3), round(start + 0.3 + 0.0015 * i, 3), w.text, w.probability)
                for i, w in enumerate(original.words)
            ),
        }
    )
    again = decode_entry(encode_entry(odd, start), start)
    assert again.words == odd.words


def test_nan_figures_survive_as_nan() -> None:
    transcript = make_transcript()
    broken = type(transcript)(**{**transcript.__dict__, "avg_logprob": float("nan")})
    again = decode_entry(encode_entry(broken, 0.0), 0.0)
    assert again.avg_logprob != again.avg_logprob


@pytest.mark.parametrize(
    "entry",
    [
        b"",
        b"\x07" + orjson.dumps({}),
        _entry(b"{not json"),
        _entry(orjson.dumps([1, 2])),
        _entry(orjson.dumps({"words": []})),
        _entry(orjson.dumps({"words": [[0, 1, "x"]]})),
    ],
)
def test_corrupt_entries_raise_corrupt_entry_error(entry: bytes) -> None:
    with pytest.raises(CorruptEntryError):
        decode_entry(entry, 0.0)


def test_wrongly_typed_field_is_corrupt() -> None:
    body = orjson.loads(encode_entry(make_transcript(), 0.0)[17:])
    body["text"] = 5
    with pytest.raises(CorruptEntryError):
        decode_entry(_entry(orjson.dumps(body)), 0.0)


def test_a_flipped_bit_anywhere_is_a_corrupt_entry_not_another_transcript() -> None:
    entry = encode_entry(make_transcript(), 0.0)
    for at in range(len(entry)):
        for bit in (0x01, 0x20):
            damaged = bytearray(entry)
            damaged[at] ^= bit
            with pytest.raises(CorruptEntryError):
                decode_entry(bytes(damaged), 0.0)
