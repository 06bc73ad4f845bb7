from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from pathlib import Path

from stream_app.config import Settings
from stream_app.local import StackLayout
from stream_app.local.rendering import (
    format_identity,
    packaged_log4j_config,
    render_pom,
    render_properties,
    server_properties,
)

POM_NS = {"m": "http://maven.apache.org/POM/4.0.0"}


def _layout(settings: Settings, tmp_path: Path, port: int = 29092, cport: int = 29093) -> StackLayout:
    custom = dataclasses.replace(
        settings,
        kafka=dataclasses.replace(settings.kafka, bootstrap_servers=f"127.0.0.1:{port}", controller_port=cport),
        local=dataclasses.replace(settings.local, home=str(tmp_path)),
    )
    return StackLayout.from_settings(custom)


def test_server_properties_describe_a_single_kraft_node(settings: Settings, tmp_path: Path) -> None:
    props = server_properties(_layout(settings, tmp_path), partitions=6)
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:29093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["controller.listener.names"] == "CONTROLLER"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"
    assert props["num.partitions"] == "6"
    assert props["auto.create.topics.enable"] == "true"
    assert props["group.initial.rebalance.delay.ms"] == "0"
    assert props["group.min.session.timeout.ms"] == "2000"  # worker.session_timeout may be measured below 6 s
    assert props["log.dirs"] == str(tmp_path / "kafka-29092" / "data")
    for key in (
        "offsets.topic.replication.factor",
        "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr",
        "share.coordinator.state.topic.replication.factor",
        "share.coordinator.state.topic.min.isr",
    ):
        assert props[key] == "1", key


def test_render_properties_writes_one_key_per_line_in_order() -> None:
    text = render_properties({"b.key": "2", "a.key": "C:\\dir", "multi": "x\ny"})
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == ["b.key=2", "a.key=C:\\\\dir", "multi=x\\ny"]
    assert text.endswith("\n")


def test_pom_names_kafka_and_the_slf4j1_log4j2_binding() -> None:
    root = ET.fromstring(render_pom("4.1.1", "2.24.3"))
    deps = {
        (
            d.findtext("m:groupId", namespaces=POM_NS),
            d.findtext("m:artifactId", namespaces=POM_NS),
        ): d.findtext("m:version", namespaces=POM_NS)
        for d in root.iterfind("m:dependencies/m:dependency", POM_NS)
    }
    assert deps == {
        ("org.apache.kafka", "kafka_2.13"): "4.1.1",
        ("org.apache.logging.log4j", "log4j-core"): "2.24.3",
        ("org.apache.logging.log4j", "log4j-slf4j-impl"): "2.24.3",
    }


def test_pom_version_is_substituted() -> None:
    text = render_pom("4.0.0")
    assert "@" not in text.replace("xmlns", "")
    assert "<version>4.0.0</version>" in text


def test_log4j_config_is_a_properties_file_with_a_root_logger() -> None:
    text = packaged_log4j_config()
    assert "rootLogger.level = INFO" in text
    assert "appender.stdout.type = Console" in text


def test_format_identity_changes_with_the_controller(settings: Settings, tmp_path: Path) -> None:
    first = format_identity(_layout(settings, tmp_path, cport=29093))
    assert first == format_identity(_layout(settings, tmp_path, cport=29093))
    assert first != format_identity(_layout(settings, tmp_path, cport=29094))
