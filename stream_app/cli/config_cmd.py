"""`stream-app config show|check`: print the effective configuration; test the connections it describes.

``show`` prints every secret as ``***``. ``check`` connects to Kafka (a metadata request) and Redis
(PING) with the configured security and says, per service, that it works or why it was refused.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from stream_app.cli.actions import action_subparsers
from stream_app.config import Settings
from stream_app.config.secrets import redact_url


def register(subparsers: Any) -> None:
    """Add the `config` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser("config", help="show the effective configuration")
    sub = action_subparsers(parser, "config_command")
    show = sub.add_parser("show", help="print the configuration after file and environment overrides")
    show.add_argument("--json", action="store_true", help="print JSON instead of TOML-like text")
    show.set_defaults(handler=_show)
    check = sub.add_parser("check", help="connect to Kafka and Redis as configured; say what works and what not")
    check.add_argument("--timeout", type=float, default=15.0, help="seconds to wait for each service")
    check.set_defaults(handler=_check)


def _show(args: argparse.Namespace, settings: Settings) -> int:
    data = settings.to_dict()
    if args.json:
        print(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return 0
    for section, values in data.items():
        print(f"[{section}]")
        for key, value in values.items():
            print(f"{key} = {orjson.dumps(value).decode()}")
        print()
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    from stream_app.cache.exceptions import RedisAccessError
    from stream_app.cache.factory import check_redis_access
    from stream_app.clients.exceptions import KafkaAccessError
    from stream_app.clients.kafka_probe import check_kafka_access

    kafka = settings.kafka
    failed = 0
    try:
        brokers = check_kafka_access(kafka, timeout=args.timeout)
    except KafkaAccessError as exc:
        print(f"kafka: FAILED: {exc}", file=sys.stderr)
        failed += 1
    else:
        who = f", {kafka.sasl_mechanism} as {kafka.username!r}" if kafka.security_protocol.startswith("SASL_") else ""
        print(f"kafka: ok, {brokers} broker(s) at {kafka.bootstrap_servers} ({kafka.security_protocol}{who})")
    if "redis" in settings.caching.cache_levels:
        try:
            check_redis_access(settings.caching, timeout=min(args.timeout, 5.0))
        except RedisAccessError as exc:
            print(f"redis: FAILED: {exc}", file=sys.stderr)
            failed += 1
        else:
            print(f"redis: ok at {redact_url(settings.caching.l3_redis_url)}")
    return 1 if failed else 0
