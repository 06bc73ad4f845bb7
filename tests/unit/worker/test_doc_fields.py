"""Typed reads of stored state fields: the right type passes, anything else is refused, never coerced."""

from __future__ import annotations

import pytest

from stream_app.worker.doc_fields import as_float, as_int, as_str


def test_each_reader_returns_a_value_of_its_type() -> None:
    assert as_int(7) == 7
    assert as_float(2) == 2.0 and isinstance(as_float(2), float)
    assert as_float(0.5) == 0.5
    assert as_str("s-1") == "s-1"


@pytest.mark.parametrize(
    ("read", "value"),
    [
        (as_int, True),
        (as_int, 1.0),
        (as_int, "1"),
        (as_float, False),
        (as_float, "0.5"),
        (as_float, None),
        (as_str, 1),
        (as_str, b"s"),
        (as_str, None),
    ],
)
def test_a_field_of_another_type_is_refused(read: object, value: object) -> None:
    with pytest.raises(ValueError):
        read(value)  # type: ignore[operator]
