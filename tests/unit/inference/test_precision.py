from __future__ import annotations

import pytest

from stream_app.inference.exceptions import PrecisionError
from stream_app.inference.precision import (
    PRECISIONS,
    EscalationRule,
    next_precision,
    normalize_precision,
    resolve_precision,
    supported_precisions,
)
from stream_app.inference.types import WindowTranscript

CPU = {"float32", "int8", "int8_float32"}  # what CTranslate2 reports on a CPU without bf16 support
CUDA = {"float32", "float16", "bfloat16", "int8", "int8_float16", "int8_float32", "int8_bfloat16"}


@pytest.mark.parametrize("name", PRECISIONS)
def test_every_canonical_name_is_accepted(name: str) -> None:
    assert normalize_precision(name) == name


@pytest.mark.parametrize(
    ("alias", "name"),
    [
        ("fp32", "float32"),
        ("FP16", "float16"),
        ("bf16", "bfloat16"),
        (" int8 ", "int8"),
        ("int8_fp16", "int8_float16"),
    ],
)
def test_aliases_map_to_canonical_names(alias: str, name: str) -> None:
    assert normalize_precision(alias) == name


@pytest.mark.parametrize("name", ["int4", "INT4", "int4_float16"])
def test_int4_is_rejected_with_the_reason(name: str) -> None:
    with pytest.raises(PrecisionError, match="no 4-bit"):
        normalize_precision(name)


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(PrecisionError, match="choose one of float32"):
        normalize_precision("float8")


def test_supported_precision_is_used_as_is() -> None:
    assert resolve_precision("int8", "cpu", supported=CPU) == ("int8", None)


@pytest.mark.parametrize(
    ("requested", "expected"),
    [
        ("float16", "float32"),
        ("bf16", "float32"),
        ("int8_float16", "int8_float32"),
        ("int8_bfloat16", "int8_float32"),
    ],
)
def test_unsupported_precision_falls_back_in_documented_order(requested: str, expected: str) -> None:
    chosen, note = resolve_precision(requested, "cpu", supported=CPU)
    assert chosen == expected
    assert note is not None and expected in note and "not supported on cpu" in note


def test_int8_falls_back_to_float32_when_int8_is_missing() -> None:
    assert resolve_precision("int8", "cpu", supported={"float32"})[0] == "float32"


def test_no_supported_fallback_is_an_error() -> None:
    with pytest.raises(PrecisionError, match="not supported"):
        resolve_precision("float16", "cpu", supported={"int8"})


def test_this_machines_cpu_runs_float32_and_int8() -> None:
    supported = supported_precisions("cpu")
    assert {"float32", "int8"} <= supported
    assert resolve_precision("float32", "cpu")[0] == "float32"


def test_cpu_ladder_skips_int8_float32_twin() -> None:
    assert next_precision("int8", "float32", "cpu", supported=CPU) == "float32"
    assert next_precision("float32", "float32", "cpu", supported=CPU) is None


def test_cuda_ladder_climbs_one_step_at_a_time() -> None:
    assert next_precision("int8_float16", "float32", "cuda", supported=CUDA) == "float16"
    assert next_precision("float16", "float32", "cuda", supported=CUDA) == "float32"


def test_ceiling_stops_the_climb() -> None:
    assert next_precision("int8_float16", "float16", "cuda", supported=CUDA) == "float16"
    assert next_precision("float16", "float16", "cuda", supported=CUDA) is None
    assert next_precision("int8", "int8_float32", "cpu", supported=CPU) is None


def _result(
    avg_logprob: float = -0.3, no_speech: float = 0.1, ratio: float = 1.5, skipped: bool = False
) -> WindowTranscript:
    return WindowTranscript(
        words=(),
        text="x",
        avg_logprob=avg_logprob,
        no_speech_prob=no_speech,
        compression_ratio=ratio,
        model="tiny.en",
        precision="int8",
        skipped_silence=skipped,
    )


RULE = EscalationRule(logprob_threshold=-0.8, compression_ratio_threshold=2.4, no_speech_threshold=0.6)


def test_confident_window_stays() -> None:
    assert not RULE.should_escalate(_result())


def test_low_logprob_escalates() -> None:
    assert RULE.should_escalate(_result(avg_logprob=-1.2))


def test_repetition_escalates() -> None:
    assert RULE.should_escalate(_result(ratio=3.1))


def test_silence_never_escalates() -> None:
    assert not RULE.should_escalate(_result(avg_logprob=-1.5, no_speech=0.9))
    assert not RULE.should_escalate(_result(avg_logprob=-1.5, ratio=5.0, no_speech=0.6))
    assert not RULE.should_escalate(_result(avg_logprob=-1.5, skipped=True))


def test_thresholds_are_strict_bounds() -> None:
    assert not RULE.should_escalate(_result(avg_logprob=-0.8, ratio=2.4))
