"""The secure local stack put together: broker and Redis security from the material, and the client's view.

`client_values` is the one description of how a client reaches the secure stack; it is written as
the TOML overlay a user passes to ``stream-app -c`` (`write_client_config`) and applied to the
running configuration for the stack's own probes and topic creation (`secure_client_settings`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from stream_app.cache.factory import redis_connection_options
from stream_app.clients.kafka_config import security_config
from stream_app.config import Settings
from stream_app.config.secrets import Secret
from stream_app.local.endpoints import StackLayout
from stream_app.local.kafka_node import BrokerSecurity
from stream_app.local.redis_node import RedisSecurity
from stream_app.local.secure_material import (
    BROKER_USER,
    CLIENT_MECHANISM,
    KAFKA_BROKER,
    KAFKA_CLIENT,
    KAFKA_USER,
    KEYSTORE,
    REDIS_ADMIN,
    REDIS_CLIENT,
    REDIS_USER,
    SCRAM_MECHANISMS,
    SecureMaterial,
)
from stream_app.local.secure_rendering import redis_tls_config, scram_format_args, secure_broker_properties

# Keys of the overlay whose value names a file that holds the secret of the key without "_file".
_SECRET_FILE_KEYS = ("password_file", "redis_password_file")


def client_values(layout: StackLayout, material: SecureMaterial) -> dict[str, dict[str, Any]]:
    """Return the configuration a client needs for the secure stack, by section (passwords as files)."""
    return {
        "kafka": {
            "bootstrap_servers": str(layout.kafka),
            "controller_port": layout.controller.port,
            "kafka_version": layout.kafka_version,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": CLIENT_MECHANISM,
            "username": KAFKA_USER,
            "password_file": str(material.password_file(KAFKA_CLIENT)),
            "ssl_ca_file": str(material.tls.ca_cert),
            "ssl_check_hostname": True,
        },
        "caching": {
            "l3_redis_url": f"rediss://{layout.redis}/0",
            "redis_username": REDIS_USER,
            "redis_password_file": str(material.password_file(REDIS_CLIENT)),
            "redis_ssl_ca_file": str(material.tls.ca_cert),
            "redis_ssl_check_hostname": True,
        },
        "local": {"home": str(layout.home), "redis_port": layout.redis.port},
    }


def render_client_config(values: dict[str, dict[str, Any]]) -> str:
    """Write ``values`` as a TOML overlay (strings, numbers and booleans only)."""
    lines = [
        "# Written by `stream-app local up --secure`: how a client reaches the local SASL_SSL Kafka and TLS Redis.",
        "# Use it as `stream-app -c <this file> ...`. Passwords stay in the files named by *_password_file.",
    ]
    for section, entries in values.items():
        lines += ["", f"[{section}]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in entries.items()]
    return "\n".join(lines) + "\n"


def write_client_config(layout: StackLayout, material: SecureMaterial) -> Path:
    """Write the client overlay into the stack's home and return its path."""
    path = layout.client_config
    path.write_text(render_client_config(client_values(layout, material)), encoding="utf-8")
    return path


def secure_client_settings(settings: Settings, layout: StackLayout, material: SecureMaterial) -> Settings:
    """Return ``settings`` with the client's view of the secure stack applied (passwords read from their files)."""
    values = client_values(layout, material)
    sections: dict[str, Any] = {}
    for name, entries in values.items():
        applied = dict(entries)
        for key in _SECRET_FILE_KEYS:
            if key in applied:
                applied[key.removesuffix("_file")] = Secret(Path(applied[key]).read_text(encoding="utf-8").strip())
        sections[name] = dataclasses.replace(getattr(settings, name), **applied)
    return dataclasses.replace(settings, **sections)


def broker_security(layout: StackLayout, material: SecureMaterial, client: Settings) -> BrokerSecurity:
    """Return the broker's SASL_SSL listener, its SCRAM users, and the probe's login (as ``client``)."""
    users = {BROKER_USER: material.password(KAFKA_BROKER), KAFKA_USER: material.password(KAFKA_CLIENT)}
    properties = secure_broker_properties(
        layout,
        material.tls,
        keystore_password=material.password(KEYSTORE),
        broker_user=BROKER_USER,
        broker_password=users[BROKER_USER],
        plain_users={KAFKA_USER: users[KAFKA_USER]},
    )
    return BrokerSecurity(properties, tuple(scram_format_args(users, SCRAM_MECHANISMS)), security_config(client.kafka))


def redis_security(layout: StackLayout, material: SecureMaterial, client: Settings) -> RedisSecurity:
    """Return the TLS Redis's configuration and the probe's login (as ``client``)."""
    config = redis_tls_config(
        layout,
        material.tls,
        admin_password=material.password(REDIS_ADMIN),
        user=REDIS_USER,
        user_password=material.password(REDIS_CLIENT),
    )
    return RedisSecurity(config, {"ssl": True, **redis_connection_options(client.caching)})


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a valid TOML basic string
