"""`stream-app worker`: run one replica of the service in the consumer group."""

from __future__ import annotations

import argparse
import logging
from typing import Any

from stream_app.config import Settings

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the `worker` sub-command."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "worker", help="run a worker replica (consumes audio chunks, publishes transcript segments)"
    )
    parser.add_argument("--replica", help="replica name (its local state folder); default: host-webport")
    parser.add_argument("--web-port", type=int, help="faust web port (overrides worker.web_port)")
    parser.add_argument("--metrics-port", type=int, help="metrics port (overrides metrics.port; 0 = any free)")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import replace

    from stream_app.clients.broker_limits import min_session_timeout
    from stream_app.clients.exceptions import KafkaAccessError
    from stream_app.clients.kafka_probe import check_kafka_access
    from stream_app.config.exceptions import ConfigError
    from stream_app.inference.exceptions import InferenceError
    from stream_app.worker.membership import fit_session_timeout
    from stream_app.worker.runtime import run_worker  # heavy imports only when the worker runs

    try:  # a refused password or an untrusted certificate is said in one line, at once
        check_kafka_access(settings.kafka, timeout=60.0)
        worker = fit_session_timeout(settings.worker, min_session_timeout(settings.kafka))
        settings = replace(settings, worker=worker)
        return run_worker(settings, replica=args.replica, web_port=args.web_port, metrics_port=args.metrics_port)
    except KafkaAccessError as exc:
        log.error("cannot reach Kafka: %s", exc)
    except InferenceError as exc:  # unknown model, model files damaged, device unusable
        log.error("cannot load the model: %s", exc)
    except ConfigError as exc:  # a rule only the running worker can check
        log.error("stream-app: %s", exc)
    return 2
