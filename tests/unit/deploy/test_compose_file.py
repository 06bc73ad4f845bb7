"""docker-compose.yml survives a stop: schema-valid, healthchecks, grace period, state volumes, replication.

No Docker engine runs on these machines, and the docker client here has no compose plugin, so the file
is checked against the Compose Specification's JSON Schema (deploy/schemas/compose-spec.json) and its
properties are checked one by one. Where `docker compose` exists, `docker compose config` runs too.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import k8s_checks
import k8s_render
import pytest
import yaml

from stream_app.config import Settings, load_settings
from stream_app.worker.handover import stop_budget

REPO = k8s_render.REPO
COMPOSE = REPO / "docker-compose.yml"
PROMETHEUS_CONFIG = REPO / "deploy" / "prometheus" / "prometheus.yml"

Compose = dict[str, Any]


def load(path: Path = COMPOSE) -> Compose:
    loaded: Compose = yaml.safe_load(path.read_text())  # resolves the file's anchors and merge keys
    return loaded


def seconds(duration: str) -> float:
    """A compose duration (``90s``, ``1m30s``, ``500ms``) in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a duration: {duration!r}")
    unit = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    return sum(float(n) * unit[u] for n, u in parts)


def brokers(compose: Compose) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in compose["services"].items()
        if "broker" in str(svc.get("environment", {}).get("KAFKA_PROCESS_ROLES", ""))
    }


def workers(compose: Compose) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if (svc.get("command") or [None])[0] == "worker"}


def worker_settings(service: dict[str, Any]) -> Settings:
    env = {k: str(v) for k, v in service.get("environment", {}).items() if k.startswith("STREAM_APP_")}
    return load_settings(env=env)


def problems(compose: Compose) -> list[str]:
    """What keeps this compose file from surviving a stop (empty when nothing)."""
    schema = jsonschema.Draft7Validator(json.loads((REPO / "deploy" / "schemas" / "compose-spec.json").read_text()))
    out = [f"schema: {e.message} at {'/'.join(map(str, e.absolute_path))}" for e in schema.iter_errors(compose)]
    if out:
        return out
    services = compose["services"]
    volumes = set(compose.get("volumes") or {})

    # Every long-running service says when it is healthy.
    for name, svc in services.items():
        if svc.get("restart") != "no" and "healthcheck" not in svc:
            out.append(f"{name}: no healthcheck")

    # Kafka: replication that fits the brokers, no auto-creation.
    nodes = brokers(compose)
    if not nodes:
        return [*out, "no Kafka broker service"]
    count = len(nodes)
    cluster_ids = {str(svc["environment"].get("CLUSTER_ID")) for svc in nodes.values()}
    if len(cluster_ids) != 1:
        out.append(f"brokers disagree on CLUSTER_ID: {sorted(cluster_ids)}")
    node_ids = [str(svc["environment"].get("KAFKA_NODE_ID")) for svc in nodes.values()]
    if len(set(node_ids)) != count:
        out.append(f"KAFKA_NODE_ID must be unique: {node_ids}")
    for name, svc in nodes.items():
        env = svc["environment"]
        voters = str(env.get("KAFKA_CONTROLLER_QUORUM_VOTERS", ""))
        if sorted(v.split("@")[1].split(":")[0] for v in voters.split(",") if "@" in v) != sorted(nodes):
            out.append(f"{name}: KAFKA_CONTROLLER_QUORUM_VOTERS must list every node")
        if str(env.get("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "true")).lower() != "false":
            out.append(f"{name}: topic auto-creation must be off (KAFKA_AUTO_CREATE_TOPICS_ENABLE=false)")
        for key, value in env.items():
            if key.endswith("REPLICATION_FACTOR") and int(value) > count:
                out.append(f"{name}: {key}={value} but only {count} brokers")
            if key.endswith("REPLICATION_FACTOR") and count > 1 and int(value) < 2:
                out.append(f"{name}: {key}={value}: one broker's stop would take partitions offline")
        rf = int(env.get("KAFKA_DEFAULT_REPLICATION_FACTOR", 1))
        for key in ("KAFKA_MIN_INSYNC_REPLICAS", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
            if int(env.get(key, 1)) >= max(rf, 2) and count > 1:
                out.append(f"{name}: {key} must be below the replication factor, or one stopped broker stops writes")
        if "healthcheck" not in svc:
            out.append(f"{name}: no healthcheck")

    # Workers: grace period, health on /healthz or /readyz, a state volume each.
    replicas = workers(compose)
    if not replicas:
        return [*out, "no worker service"]
    seen_volumes: dict[str, str] = {}
    ports: dict[str, int] = {}
    for name, svc in replicas.items():
        try:
            settings = worker_settings(svc)
        except Exception as exc:  # the loader's ConfigError names the key and the value
            out.append(f"{name}: {exc}")
            continue
        ports[name] = settings.metrics.port
        if settings.kafka.replication_factor > count or (count > 1 and settings.kafka.replication_factor < 2):
            out.append(
                f"{name}: kafka.replication_factor {settings.kafka.replication_factor} does not fit {count} brokers"
            )
        grace = seconds(str(svc.get("stop_grace_period", "10s")))
        if grace <= stop_budget(settings.worker.drain_timeout):
            out.append(f"{name}: stop_grace_period {grace:.0f} s must exceed the graceful stop (worker.drain_timeout)")
        test = " ".join(svc.get("healthcheck", {}).get("test", []))
        if not re.search(rf":{settings.metrics.port}/(healthz|readyz)\b", test):
            out.append(f"{name}: healthcheck must probe /healthz or /readyz on metrics.port {settings.metrics.port}")
        mounts = [str(v) for v in svc.get("volumes", [])]
        state = [m for m in mounts if m.split(":")[1:2] == [settings.worker.data_dir]]
        if not state:
            out.append(f"{name}: no volume on worker.data_dir ({settings.worker.data_dir})")
        for mount in state:
            source = mount.split(":")[0]
            if source not in volumes:
                out.append(f"{name}: {source} is not a named volume")
            if source in seen_volumes:
                out.append(f"{name}: shares its state volume {source} with {seen_volumes[source]}")
            seen_volumes[source] = name
        command = svc.get("command", [])
        if "--replica" not in command:
            out.append(f"{name}: pass --replica so a recreated container finds its state folder")
    names = [
        svc["command"][svc["command"].index("--replica") + 1]
        for svc in replicas.values()
        if "--replica" in svc["command"]
    ]
    if len(set(names)) != len(names):
        out.append(f"worker replica names must be unique: {names}")

    # Prometheus scrapes every worker and loads the rules.
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "stream-app-worker"]
    targets = {t for group in job.get("static_configs", []) for t in group["targets"]}
    wanted = {f"{name}:{port}" for name, port in ports.items()}
    if targets != wanted:
        out.append(f"deploy/prometheus/prometheus.yml scrapes {sorted(targets)}, the workers are {sorted(wanted)}")
    prometheus = services.get("prometheus", {})
    if not any(str(v).startswith("./deploy/prometheus:/etc/prometheus") for v in prometheus.get("volumes", [])):
        out.append("prometheus: mount ./deploy/prometheus on /etc/prometheus (config and alert rules)")
    return out


# --- the file as it is ---------------------------------------------------------------------------


def test_the_compose_file_survives_a_stop() -> None:
    assert problems(load()) == []


def test_there_are_three_brokers_and_two_workers() -> None:
    compose = load()
    assert sorted(brokers(compose)) == ["kafka-1", "kafka-2", "kafka-3"]
    assert sorted(workers(compose)) == ["worker-1", "worker-2"]
    assert all(worker_settings(svc).kafka.replication_factor == 3 for svc in workers(compose).values())


def test_the_worker_env_names_only_known_settings() -> None:
    known = k8s_checks.known_settings()
    for name, svc in workers(load()).items():
        for key in svc["environment"]:
            match = k8s_checks.ENV_SETTING.match(key)
            assert match, f"{name}: {key}"
            assert f"{match[1].lower()}.{match[2].lower()}" in known, f"{name}: {key}"


@pytest.mark.parametrize(("text", "expected"), [("90s", 90.0), ("1m30s", 90.0), ("500ms", 0.5), ("2h", 7200.0)])
def test_seconds(text: str, expected: float) -> None:
    assert seconds(text) == expected


# --- broken copies are refused -------------------------------------------------------------------


def _svc(name: str, key: str, value: Any) -> Any:
    def apply(compose: Compose) -> None:
        compose["services"][name][key] = value

    return apply


def _env(name: str, key: str, value: Any) -> Any:
    def apply(compose: Compose) -> None:
        compose["services"][name]["environment"][key] = value

    return apply


def _drop(name: str, key: str) -> Any:
    def apply(compose: Compose) -> None:
        del compose["services"][name][key]

    return apply


def _shared_volume(compose: Compose) -> None:
    compose["services"]["worker-2"]["volumes"] = ["worker-1-state:/var/lib/stream-app/worker"]


def _one_broker(compose: Compose) -> None:
    for name in ("kafka-2", "kafka-3"):
        del compose["services"][name]
    compose["services"]["topics"]["depends_on"] = {"kafka-1": {"condition": "service_healthy"}}
    compose["services"]["kafka-1"]["environment"]["KAFKA_CONTROLLER_QUORUM_VOTERS"] = "1@kafka-1:9093"


BROKEN = {
    "docker's default grace": (_drop("worker-1", "stop_grace_period"), "stop_grace_period 10 s"),
    "grace shorter than the graceful stop": (_svc("worker-2", "stop_grace_period", "20s"), "stop_grace_period 20 s"),
    "worker without healthcheck": (_drop("worker-1", "healthcheck"), "worker-1: no healthcheck"),
    "kafka without healthcheck": (_drop("kafka-2", "healthcheck"), "kafka-2: no healthcheck"),
    "redis without healthcheck": (_drop("redis", "healthcheck"), "redis: no healthcheck"),
    "healthcheck on another path": (
        _svc("worker-1", "healthcheck", {"test": ["CMD", "true"]}),
        "healthcheck must probe /healthz or /readyz",
    ),
    "no state volume": (_drop("worker-2", "volumes"), "worker-2: no volume on worker.data_dir"),
    "shared state volume": (_shared_volume, "shares its state volume worker-1-state"),
    "auto-creation on": (_env("kafka-3", "KAFKA_AUTO_CREATE_TOPICS_ENABLE", "true"), "auto-creation must be off"),
    "replication beyond the brokers": (_env("kafka-1", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", 5), "only 3 brokers"),
    "replication of one": (_env("kafka-1", "KAFKA_DEFAULT_REPLICATION_FACTOR", 1), "one broker's stop"),
    "min isr equal to replicas": (_env("kafka-2", "KAFKA_MIN_INSYNC_REPLICAS", 3), "must be below the replication"),
    "worker replication beyond the brokers": (_one_broker, "does not fit 1 brokers"),
    "worker replication of one": (
        _env("worker-1", "STREAM_APP_KAFKA__REPLICATION_FACTOR", "1"),
        "replication_factor 1 does not fit 3 brokers",
    ),
    "bad worker setting": (_env("worker-1", "STREAM_APP_KAFKA__PARTITIONS", "0"), "kafka.partitions"),
    "split cluster": (_env("kafka-3", "CLUSTER_ID", "other"), "CLUSTER_ID"),
    "duplicate node id": (_env("kafka-3", "KAFKA_NODE_ID", 1), "KAFKA_NODE_ID must be unique"),
    "unscraped worker": (
        lambda c: c["services"].update({"worker-3": copy.deepcopy(c["services"]["worker-1"])}),
        "prometheus.yml scrapes",
    ),
    "schema: unknown service key": (
        _svc("redis", "restart_policy", "always"),
        "does not match any of the regexes: '^x-'",
    ),
    "schema: wrong type": (_svc("worker-1", "stop_grace_period", 90), "schema: 90 is not of type 'string'"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_copy_is_refused(case: str) -> None:
    mutate, expected = BROKEN[case]
    compose = copy.deepcopy(load())
    mutate(compose)
    found = problems(compose)
    assert any(expected in line for line in found), found
