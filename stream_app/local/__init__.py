"""The local stack: a real Apache Kafka (KRaft, Maven-fetched jars) and Redis, without Docker."""

from stream_app.local.endpoints import HostPort, StackLayout, parse_host_port
from stream_app.local.exceptions import LocalStackError
from stream_app.local.service import ServiceState
from stream_app.local.stack import LocalStack
from stream_app.local.topics import delete_topics, ensure_topics, service_topics

__all__ = [
    "HostPort",
    "LocalStack",
    "LocalStackError",
    "ServiceState",
    "StackLayout",
    "delete_topics",
    "ensure_topics",
    "parse_host_port",
    "service_topics",
]
