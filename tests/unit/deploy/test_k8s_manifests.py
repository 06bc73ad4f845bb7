"""deploy/k8s: every object validates against its schema, and the objects agree with each other and the config."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import k8s_checks as k8s
import k8s_render as kr
import pytest
import yaml

Objects = list[dict[str, Any]]


@pytest.fixture(scope="module")
def base() -> Objects:
    return kr.render(kr.K8S / "base")


def sts(objects: Objects) -> dict[str, Any]:
    return kr.find(objects, "StatefulSet", "stream-app-worker")[0]


def pod(objects: Objects) -> dict[str, Any]:
    return sts(objects)["spec"]["template"]["spec"]


def worker(objects: Objects) -> dict[str, Any]:
    return k8s.worker_container(sts(objects))


def env(objects: Objects, name: str) -> dict[str, Any]:
    return next(e for e in worker(objects)["env"] if e["name"] == name)


def scaled(objects: Objects) -> dict[str, Any]:
    return kr.find(objects, "ScaledObject")[0]


# --- the manifests as they are -------------------------------------------------------------------


@pytest.mark.parametrize("directory", kr.kustomization_dirs(), ids=lambda p: p.name)
def test_every_kustomization_renders_and_validates(directory: Path) -> None:
    objects = kr.render(directory)
    assert k8s.all_problems(objects) == []


def test_the_base_has_every_object_the_deployment_needs(base: Objects) -> None:
    kinds = sorted(o["kind"] for o in base)
    assert kinds == sorted(
        [
            "ConfigMap",
            "Namespace",
            "PodDisruptionBudget",
            "ScaledObject",
            "Secret",
            "Service",
            "ServiceAccount",
            "StatefulSet",
            "TriggerAuthentication",
        ]
    )
    monitored = kr.render(kr.K8S / "with-servicemonitor")
    assert [o["kind"] for o in monitored if o["kind"] not in kinds] == ["ServiceMonitor"]


def test_no_manifest_is_left_out_of_every_kustomization() -> None:
    used: set[Path] = set()
    for directory in kr.kustomization_dirs():
        kr.render(directory, used)
    files = {p.resolve() for p in kr.K8S.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml", ".toml")}
    assert sorted(str(p.relative_to(kr.K8S)) for p in files - used) == []


def test_the_configuration_loads_with_stream_apps_own_loader(base: Objects) -> None:
    settings, pending = k8s.effective_settings(base, sts(base))
    assert settings.kafka.partitions == 4
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert settings.worker.data_dir == "/var/lib/stream-app/worker"
    assert settings.parallel.cpu_cores == 2  # from limits.cpu, divided among the model replicas
    assert settings.kafka.bootstrap_servers == env(base, "STREAM_APP_KAFKA__BOOTSTRAP_SERVERS")["value"]
    assert pending == []  # every setting the manifests name is one stream_app knows


def test_the_readme_overlay_patches_the_bootstrap_servers_where_they_are(base: Objects) -> None:
    # deploy/k8s/README.md's overlay example replaces .../env/2/value in both containers.
    readme = (kr.K8S / "README.md").read_text()
    assert "/spec/template/spec/containers/0/env/2/value" in readme
    assert "/spec/template/spec/initContainers/0/env/2/value" in readme
    assert pod(base)["containers"][0]["env"][2]["name"] == "STREAM_APP_KAFKA__BOOTSTRAP_SERVERS"
    assert pod(base)["initContainers"][0]["env"][2]["name"] == "STREAM_APP_KAFKA__BOOTSTRAP_SERVERS"


def test_secrets_reach_the_worker_as_files_not_as_environment_values(base: Objects) -> None:
    for item in worker(base)["env"]:
        if item["name"].endswith(("PASSWORD", "_KEY_PASSWORD")):
            pytest.fail(f"{item['name']}: a secret in the environment; use {item['name']}_FILE")
    files = [e for e in worker(base)["env"] if e["name"].endswith("_FILE")]
    assert {e["name"] for e in files} >= {
        "STREAM_APP_KAFKA__PASSWORD_FILE",
        "STREAM_APP_KAFKA__SSL_CA_FILE",
        "STREAM_APP_CACHING__REDIS_PASSWORD_FILE",
    }
    assert all(e["value"].startswith("/etc/stream-app/secrets/") for e in files)
    volume = next(v for v in pod(base)["volumes"] if v["name"] == "credentials")
    assert volume["secret"]["defaultMode"] == 0o440


def test_measured_memory_figures_are_found_in_the_benchmark_docs() -> None:
    headline, highest = k8s.measured_worker_rss_mib()
    assert 300 < headline <= highest < 1024


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512Mi", 512 * 2**20), ("1Gi", 2**30), ("500m", 0.5), ("2", 2.0), ("1.5", 1.5), ("100M", 1e8)],
)
def test_quantity(text: str, expected: float) -> None:
    assert k8s.quantity(text) == expected


def test_quantity_refuses_garbage() -> None:
    with pytest.raises(ValueError, match="not a quantity"):
        k8s.quantity("lots")


# --- broken copies are refused -------------------------------------------------------------------


def _set(path: str, value: Any) -> Callable[[Objects], None]:
    """Mutation: set a dotted path (numbers index lists) in the StatefulSet."""

    def apply(objects: Objects) -> None:
        node: Any = sts(objects)
        *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
        for part in parents:
            node = node[part]
        node[last] = value

    return apply


def _scaled(key: str, value: Any) -> Callable[[Objects], None]:
    def apply(objects: Objects) -> None:
        scaled(objects)["spec"][key] = value

    return apply


def _trigger(key: str, value: Any) -> Callable[[Objects], None]:
    def apply(objects: Objects) -> None:
        scaled(objects)["spec"]["triggers"][0]["metadata"][key] = value

    return apply


def _toml(old: str, new: str) -> Callable[[Objects], None]:
    def apply(objects: Objects) -> None:
        cm = kr.find(objects, "ConfigMap", "stream-app-config")[0]
        assert old in cm["data"]["stream-app.toml"], old
        cm["data"]["stream-app.toml"] = cm["data"]["stream-app.toml"].replace(old, new)

    return apply


def _env(name: str, value: str) -> Callable[[Objects], None]:
    def apply(objects: Objects) -> None:
        env(objects, name)["value"] = value

    return apply


def _drop(kind: str) -> Callable[[Objects], None]:
    def apply(objects: Objects) -> None:
        objects[:] = [o for o in objects if o["kind"] != kind]

    return apply


def _secret_key(key: str) -> Callable[[Objects], None]:
    def apply(objects: Objects) -> None:
        del kr.find(objects, "Secret", "stream-app-credentials")[0]["stringData"][key]

    return apply


def _service_selector(objects: Objects) -> None:
    kr.find(objects, "Service")[0]["spec"]["selector"]["app.kubernetes.io/component"] = "api"


def _pdb_min_available(objects: Objects) -> None:
    spec = kr.find(objects, "PodDisruptionBudget")[0]["spec"]
    del spec["maxUnavailable"]
    spec["minAvailable"] = 1


def _typo_in_servicemonitor(objects: Objects) -> None:
    kr.find(objects, "ServiceMonitor")[0]["spec"]["endpoints"][0]["prot"] = "metrics"


BROKEN: dict[str, tuple[Callable[[Objects], None], str]] = {
    # schema: Kubernetes
    "unknown field": (_set("spec.replica", 2), "Additional properties are not allowed ('replica'"),
    "grace period as text": (_set("spec.template.spec.terminationGracePeriodSeconds", "90"), "is not of type"),
    "probe without handler port": (
        _set("spec.template.spec.containers.0.livenessProbe.httpGet", {"path": "/healthz"}),
        "'port' is a required property",
    ),
    "pdb int-or-string as list": (
        lambda o: kr.find(o, "PodDisruptionBudget")[0]["spec"].update(maxUnavailable=[1]),
        "[1] is not valid under any of the given schemas at spec/maxUnavailable",
    ),
    "keda metadata as a boolean": (
        _trigger("allowIdleConsumers", False),
        "False is not of type 'string' at spec/triggers/0/metadata/allowIdleConsumers",
    ),
    # schema: KEDA (vendored CRD)
    "replica count as text": (_scaled("maxReplicaCount", "4"), "'4' is not of type 'integer'"),
    "scaledobject typo": (_scaled("triggerz", []), "Additional properties are not allowed ('triggerz'"),
    "scaledobject without target": (
        lambda o: scaled(o)["spec"].pop("scaleTargetRef"),
        "'scaleTargetRef' is a required property",
    ),
    "triggerauthentication typo": (
        lambda o: kr.find(o, "TriggerAuthentication")[0]["spec"]["secretTargetRef"][0].update(secret="x"),
        "Additional properties are not allowed ('secret'",
    ),
    # semantics
    "grace shorter than the graceful stop": (
        _set("spec.template.spec.terminationGracePeriodSeconds", 20),
        "must exceed the graceful stop",
    ),
    "liveness on readyz": (
        _set("spec.template.spec.containers.0.livenessProbe.httpGet.path", "/readyz"),
        "livenessProbe must GET /healthz",
    ),
    "readiness on healthz": (
        _set("spec.template.spec.containers.0.readinessProbe.httpGet.path", "/healthz"),
        "readinessProbe must GET /readyz",
    ),
    "memory request below the measured peak": (
        _set("spec.template.spec.containers.0.resources.requests.memory", "400Mi"),
        "below the measured peak",
    ),
    "memory limit below the highest measured": (
        _set("spec.template.spec.containers.0.resources.limits.memory", "512Mi"),
        "below the highest measured RSS",
    ),
    "data dir not on the volume": (_toml('data_dir = "/var/lib/stream-app/worker"', 'data_dir = "/srv/w"'), "data_dir"),
    "metrics on loopback": (_toml('host = "0.0.0.0"', 'host = "127.0.0.1"'), "loopback"),
    "metrics port moved": (_toml("port = 9108", "port = 9200"), "metrics.port"),
    "bad setting value": (_toml("partitions = 4", "partitions = 0"), "kafka.partitions"),
    "unknown setting": (_toml("[streaming]", '[streaming]\nwindow_lenght = "10s"'), "streaming.window_lenght"),
    "longer drain": (
        _toml("[worker]", '[worker]\ndrain_timeout = "20s"\nrebalance_timeout = "30s"'),
        "must exceed the graceful stop",
    ),
    "more replicas than partitions": (_scaled("maxReplicaCount", 8), "<= kafka.partitions (4)"),
    "min above max": (_scaled("minReplicaCount", 5), "minReplicaCount (5) <= maxReplicaCount"),
    "scale to zero": (_scaled("minReplicaCount", 0), "1 <= minReplicaCount (0)"),
    "fewer partitions": (_toml("partitions = 4", "partitions = 2"), "kafka.partitions (2)"),
    "scaler on another topic": (_env("STREAM_APP_KAFKA__INPUT_TOPIC", "other"), "topic"),
    "scaler without tls": (_trigger("tls", "disable"), "ScaledObject tls"),
    "scaler with another mechanism": (_trigger("sasl", "plaintext"), "ScaledObject sasl"),
    "scaler with idle consumers": (_trigger("allowIdleConsumers", "true"), "allowIdleConsumers"),
    "scaler lag threshold": (_trigger("lagThreshold", "many"), "lagThreshold"),
    "secret key missing for a file": (_secret_key("kafka-password"), "has no key 'kafka-password'"),
    "secret key missing for keda": (_secret_key("kafka-ca.crt"), "kafka-ca.crt"),
    "secret file outside the mount": (
        _env("STREAM_APP_KAFKA__PASSWORD_FILE", "/etc/passwd"),
        "is not a file of a mounted Secret",
    ),
    "service does not select the pods": (_service_selector, "Service selector"),
    "pdb minAvailable": (_pdb_min_available, "maxUnavailable 1"),
    "no pdb": (_drop("PodDisruptionBudget"), "no PodDisruptionBudget"),
    "no scaledobject": (_drop("ScaledObject"), "no KEDA ScaledObject"),
    "root": (_set("spec.template.spec.securityContext.runAsNonRoot", False), "runAsNonRoot"),
    "privilege escalation": (
        _set("spec.template.spec.containers.0.securityContext.allowPrivilegeEscalation", True),
        "allowPrivilegeEscalation",
    ),
    "hostPath volume": (
        lambda o: pod(o)["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
        "not allowed by the restricted profile",
    ),
    "init container drifts": (
        lambda o: pod(o)["initContainers"][0]["env"][2].update(value="elsewhere:9092"),
        "initContainer topics: env STREAM_APP_KAFKA__BOOTSTRAP_SERVERS differs",
    ),
    "threads from the node": (
        lambda o: worker(o)["env"].remove(env(o, "STREAM_APP_PARALLEL__CPU_CORES")),
        "take it from limits.cpu",
    ),
    "no scraping": (
        lambda o: sts(o)["spec"]["template"]["metadata"]["annotations"].clear(),
        "nothing scrapes the workers",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_copy_is_refused(base: Objects, case: str) -> None:
    mutate, expected = BROKEN[case]
    objects = copy.deepcopy(base)
    mutate(objects)
    problems = k8s.all_problems(objects)
    assert any(expected in p for p in problems), problems


def test_a_broken_servicemonitor_is_refused() -> None:
    objects = kr.render(kr.K8S / "with-servicemonitor")
    _typo_in_servicemonitor(objects)
    assert any("Additional properties are not allowed ('prot'" in p for p in k8s.all_problems(objects))


def test_an_overlay_that_forgets_the_namespace_is_refused(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    path = root / "with-servicemonitor" / "kustomization.yaml"
    kust = yaml.safe_load(path.read_text())
    del kust["namespace"]
    path.write_text(yaml.safe_dump(kust))
    problems = k8s.all_problems(kr.render(root / "with-servicemonitor"))
    assert any("must all name the same namespace" in p for p in problems), problems


def _copy_tree(tmp_path: Path) -> Path:
    root = tmp_path / "k8s"
    shutil.copytree(kr.K8S, root)
    return root


def test_a_broken_file_on_disk_is_refused(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    path = root / "base" / "statefulset.yaml"
    path.write_text(path.read_text().replace("terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 5"))
    assert any("terminationGracePeriodSeconds 5" in p for p in k8s.all_problems(kr.render(root / "base")))


def test_a_missing_resource_file_is_refused(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    (root / "base" / "poddisruptionbudget.yaml").unlink()
    with pytest.raises(kr.RenderError, match=r"poddisruptionbudget\.yaml"):
        kr.render(root / "base")


def test_a_kustomize_feature_the_renderer_does_not_know_is_refused(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    path = root / "base" / "kustomization.yaml"
    kust = yaml.safe_load(path.read_text())
    kust["namePrefix"] = "prod-"
    path.write_text(yaml.safe_dump(kust))
    with pytest.raises(kr.RenderError, match="namePrefix"):
        kr.render(root / "base")


def test_the_same_object_twice_is_refused(tmp_path: Path) -> None:
    root = _copy_tree(tmp_path)
    path = root / "base" / "kustomization.yaml"
    kust = yaml.safe_load(path.read_text())
    kust["resources"].append("service.yaml")
    path.write_text(yaml.safe_dump(kust))
    with pytest.raises(kr.RenderError, match="defined twice"):
        kr.render(root / "base")
