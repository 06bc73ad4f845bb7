"""The publisher's outage limits: defaults that hold a 60 s outage, settings and flags that change them."""

from __future__ import annotations

import argparse
import logging

import pytest

from stream_app.cli.main import build_parser
from stream_app.cli.publish import delivery_limits
from stream_app.clients.publisher import FLUSH_GRACE_S, DeliveryLimits
from stream_app.config import ConfigError, load_settings


def test_defaults_are_the_settings_defaults() -> None:
    assert DeliveryLimits.from_settings(load_settings(env={}).publisher) == DeliveryLimits()


def test_defaults_hold_a_60s_outage_of_the_largest_common_recorder_format() -> None:
    limits = DeliveryLimits()
    stereo_44k_s16 = 44_100 * 2 * 2  # bytes per second
    assert limits.delivery_timeout >= 60.0 * 2  # twice the outage: time to reconnect and catch up
    assert limits.buffer_bytes >= 60.0 * stereo_44k_s16 * 2
    assert limits.buffer_chunks >= 60 * 10 * 2  # 100 ms chunks


def test_librdkafka_gets_the_limits_and_the_flush_outlasts_them() -> None:
    limits = DeliveryLimits(delivery_timeout=90.0, buffer_bytes=8 * 1024 * 1024, buffer_chunks=500)
    assert limits.producer_overrides() == {
        "message.timeout.ms": 90_000,
        "queue.buffering.max.kbytes": 8192,
        "queue.buffering.max.messages": 500,
        "reconnect.backoff.max.ms": 1000,
    }
    assert FLUSH_GRACE_S > 0


def _args(*flags: str) -> argparse.Namespace:
    return build_parser().parse_args(["publish", "talk.wav", *flags])


def test_publish_flags_override_the_settings_section() -> None:
    settings = load_settings(env={"STREAM_APP_PUBLISHER__BUFFER_CHUNKS": "300"})
    assert delivery_limits(_args(), settings) == DeliveryLimits(buffer_chunks=300)
    limits = delivery_limits(_args("--delivery-timeout", "90s", "--buffer-size", "8MB"), settings)
    assert limits == DeliveryLimits(delivery_timeout=90.0, buffer_bytes=8 * 1024 * 1024, buffer_chunks=300)


@pytest.mark.parametrize(
    ("flags", "key"),
    [
        (["--delivery-timeout", "soon"], "publisher.delivery_timeout"),
        (["--delivery-timeout", "500ms"], "publisher.delivery_timeout"),
        (["--buffer-size", "12 parsecs"], "publisher.buffer_size"),
        (["--buffer-chunks", "0"], "publisher.buffer_chunks"),
    ],
)
def test_bad_flags_are_refused_naming_the_setting(flags: list[str], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        delivery_limits(_args(*flags), load_settings(env={}))


def test_librdkafka_lines_are_throttled_per_facility(caplog: pytest.LogCaptureFixture) -> None:
    from stream_app.clients.publisher import _ThrottledLog

    throttled = _ThrottledLog(every=60.0)
    with caplog.at_level(logging.DEBUG, logger="stream_app.clients.publisher.librdkafka"):
        for _ in range(5):
            throttled.log(logging.ERROR, "%s [%s] %s", "FAIL", "producer-1", "Connection refused")
        throttled.log(logging.WARNING, "%s [%s] %s", "GETPID", "producer-1", "Coordinator load in progress")
    assert [r.getMessage() for r in caplog.records] == [
        "FAIL [producer-1] Connection refused",
        "GETPID [producer-1] Coordinator load in progress",
    ]
