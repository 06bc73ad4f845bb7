"""The secure local stack's files: broker listener, redis.conf, generated passwords and the client overlay."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from stream_app.config import Settings, load_settings
from stream_app.local import StackLayout
from stream_app.local.secure import client_values, render_client_config, secure_client_settings
from stream_app.local.secure_material import (
    KAFKA_CLIENT,
    PASSWORDS,
    REDIS_CLIENT,
    SecureMaterial,
    ensure_secure_material,
    existing_secure_material,
)
from stream_app.local.secure_rendering import redis_tls_config, scram_format_args, secure_broker_properties
from stream_app.local.tls_material import TlsFiles


def _layout(settings: Settings, home: Path, *, secure: bool = True) -> StackLayout:
    custom = dataclasses.replace(
        settings,
        kafka=dataclasses.replace(settings.kafka, bootstrap_servers="127.0.0.1:29094", controller_port=29095),
        local=dataclasses.replace(settings.local, home=str(home), redis_port=26380),
    )
    return StackLayout.from_settings(custom, secure=secure)


@pytest.fixture(scope="module")
def material(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> SecureMaterial:
    return ensure_secure_material(_layout(settings, tmp_path_factory.mktemp("home")))


def test_secure_stack_has_its_own_folders(settings: Settings, tmp_path: Path) -> None:
    plain, secure = _layout(settings, tmp_path, secure=False), _layout(settings, tmp_path)
    assert plain.kafka_dir != secure.kafka_dir and secure.kafka_dir.name == "kafka-29094-sasl"
    assert plain.redis_dir != secure.redis_dir and secure.redis_dir.name == "redis-26380-tls"
    assert secure.client_config == tmp_path / "secure-client-29094.toml"


def test_broker_listener_is_sasl_ssl_and_the_controller_stays_on_loopback(settings: Settings, tmp_path: Path) -> None:
    tls = TlsFiles(tmp_path / "tls")
    props = secure_broker_properties(
        _layout(settings, tmp_path),
        tls,
        keystore_password="ks",
        broker_user="broker",
        broker_password="bpw",
        plain_users={"stream-app": "cpw"},
    )
    assert props["listeners"] == "SASL_SSL://127.0.0.1:29094,CONTROLLER://127.0.0.1:29095"
    assert props["listener.security.protocol.map"] == "SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT"
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN"
    assert 'username="broker" password="bpw";' in props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    plain = props["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    assert 'user_broker="bpw"' in plain and 'user_stream-app="cpw"' in plain
    assert props["ssl.keystore.location"] == str(tls.server_keystore) and props["ssl.keystore.password"] == "ks"
    assert props["ssl.truststore.type"] == "PEM" and props["listener.name.sasl_ssl.ssl.client.auth"] == "requested"


def test_scram_users_are_created_at_format_for_each_mechanism() -> None:
    args = scram_format_args({"broker": "b", "app": "a"}, ("SCRAM-SHA-256", "SCRAM-SHA-512"))
    assert args == [
        "--add-scram", "SCRAM-SHA-256=[name=broker,password=b]",
        "--add-scram", "SCRAM-SHA-512=[name=broker,password=b]",
        "--add-scram", "SCRAM-SHA-256=[name=app,password=a]",
        "--add-scram", "SCRAM-SHA-512=[name=app,password=a]",
    ]  # fmt: skip


def test_redis_speaks_tls_only_and_limits_the_service_user(settings: Settings, tmp_path: Path) -> None:
    text = redis_tls_config(
        _layout(settings, tmp_path), TlsFiles(tmp_path / "tls"), admin_password="apw", user="app", user_password="upw"
    )
    lines = text.splitlines()
    assert "port 0" in lines and "tls-port 26380" in lines and "tls-auth-clients optional" in lines
    assert "user default on >apw ~* &* +@all" in lines
    assert "user app on >upw ~stream-app:* resetchannels +@all -@dangerous" in lines


def test_passwords_are_random_private_and_kept(settings: Settings, material: SecureMaterial) -> None:
    values = [material.password(name) for name in PASSWORDS]
    assert len(set(values)) == len(values) and all(len(v) >= 24 for v in values)
    assert material.secrets_dir.stat().st_mode & 0o077 == 0
    assert all(material.password_file(n).stat().st_mode & 0o077 == 0 for n in PASSWORDS)
    layout = _layout(settings, material.secrets_dir.parent)
    again = ensure_secure_material(layout)
    assert [again.password(name) for name in PASSWORDS] == values
    assert existing_secure_material(layout) == again


def test_no_material_before_the_first_start(settings: Settings, tmp_path: Path) -> None:
    assert existing_secure_material(_layout(settings, tmp_path)) is None


def test_the_overlay_loads_into_the_settings_the_stack_uses(settings: Settings, material: SecureMaterial) -> None:
    layout = _layout(settings, material.secrets_dir.parent)
    text = render_client_config(client_values(layout, material))
    for name in PASSWORDS:
        assert material.password(name) not in text  # passwords stay in their files
    path = material.secrets_dir.parent / "overlay.toml"
    path.write_text(text)
    assert tomllib.loads(text)["kafka"]["security_protocol"] == "SASL_SSL"
    loaded = load_settings(path, env={})
    expected = secure_client_settings(settings, layout, material)
    assert loaded.kafka == expected.kafka and loaded.caching == expected.caching
    assert loaded.local.home == str(layout.home) and loaded.local.redis_port == 26380
    assert loaded.kafka.password.reveal() == material.password(KAFKA_CLIENT)
    assert loaded.caching.redis_password.reveal() == material.password(REDIS_CLIENT)
    assert loaded.caching.l3_redis_url == "rediss://127.0.0.1:26380/0"
