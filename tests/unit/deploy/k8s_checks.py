"""Check what no schema can in deploy/k8s: references between objects and agreement with the configuration.

`all_problems` runs the schema checks of `k8s_render` first, then (on schema-valid objects) the
semantic ones; both return readable lines, so a test can assert a broken copy says what is wrong.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import tempfile
import tomllib
from pathlib import Path
from typing import Any

from k8s_render import CLUSTER_SCOPED, REPO, find, name_of, schema_problems

from stream_app.config import Settings, load_settings
from stream_app.worker.handover import stop_budget

BENCHMARKS = REPO / "docs" / "benchmarks"

# Settings a manifest may name before stream_app knows them (none now: every name must load).
PENDING_SETTINGS: set[str] = set()
# kafka.sasl_mechanism -> the `sasl` value of KEDA's kafka scaler.
KEDA_SASL = {"PLAIN": "plaintext", "SCRAM-SHA-256": "scram_sha256", "SCRAM-SHA-512": "scram_sha512"}
ENV_SETTING = re.compile(r"^STREAM_APP_([A-Z0-9]+)__([A-Z0-9_]+)$")


# --- what spans objects ---------------------------------------------------------------------------


def worker_container(sts: dict[str, Any]) -> dict[str, Any]:
    """The StatefulSet's worker container."""
    [container] = [c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "worker"]
    return container


def config_toml(objects: list[dict[str, Any]], sts: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Return the path STREAM_APP_CONFIG names and the TOML it holds, read through the config volume."""
    env = _plain_env(worker_container(sts))
    path = env.get("STREAM_APP_CONFIG")
    if path is None:
        raise AssertionError("worker: STREAM_APP_CONFIG is not set")
    source = _mounted_source(sts, worker_container(sts), path)
    if source is None or source[0] != "configMap":
        raise AssertionError(f"worker: STREAM_APP_CONFIG={path} is not a file of a mounted ConfigMap")
    _, cm_name, key = source
    [cm] = find(objects, "ConfigMap", cm_name) or [None]
    if cm is None or key not in cm.get("data", {}):
        raise AssertionError(f"worker: ConfigMap {cm_name} has no key {key!r} for STREAM_APP_CONFIG")
    return path, tomllib.loads(cm["data"][key])


def effective_settings(objects: list[dict[str, Any]], sts: dict[str, Any]) -> tuple[Settings, list[str]]:
    """Load the worker's configuration (ConfigMap TOML + container env) with stream_app's own loader.

    The TOML is written to a file and the environment passed as the container would see it (raw
    strings). Secret files are written to a temporary folder with the Secret's placeholder values,
    so the ``*_file`` settings are read as the worker reads them. Returns the settings and the names
    of settings left out because stream_app does not know them yet (`PENDING_SETTINGS`).
    """
    container = worker_container(sts)
    _, toml = config_toml(objects, sts)
    known = known_settings()
    seen: set[str] = set()
    lines: list[str] = []
    for section, keys in toml.items():
        if not isinstance(keys, dict):
            raise AssertionError(f"stream-app.toml: [{section}] is not a table")
        lines.append(f"[{section}]")
        for key, value in keys.items():
            seen.add(f"{section}.{key}")
            if f"{section}.{key}" in known:
                lines.append(f"{key} = {_toml_literal(value)}")
    with tempfile.TemporaryDirectory(prefix="stream-app-k8s-") as folder:
        tmp = Path(folder)
        env: dict[str, str] = {}
        for item in container.get("env", []):
            match = ENV_SETTING.match(item["name"])
            if not match:
                continue
            setting = f"{match[1].lower()}.{match[2].lower()}"
            seen.add(setting)
            value = str(item["value"]) if "value" in item else str(_env_from(objects, container, item))
            if setting.endswith("_file"):
                source = _mounted_source(sts, container, value)
                if source is None or source[0] != "secret":
                    raise AssertionError(f"worker: {item['name']}={value} is not a file of a mounted Secret")
                content = _secret_data(objects, source[1]).get(source[2])
                if content is None:
                    raise AssertionError(f"worker: {item['name']}: Secret {source[1]} has no key {source[2]!r}")
                (tmp / source[2]).write_text(content)
                value = str(tmp / source[2])
            if setting in known:
                env[item["name"]] = value
        unknown = sorted(s for s in seen if s not in known and s not in PENDING_SETTINGS)
        if unknown:
            raise AssertionError(f"settings stream_app does not know (typo?): {unknown}")
        config = tmp / "stream-app.toml"
        config.write_text("\n".join(lines) + "\n")
        pending = sorted(s for s in seen if s not in known)
        return load_settings(config, env=env), pending


def semantic_problems(objects: list[dict[str, Any]]) -> list[str]:
    """Check what no schema can: references between objects and agreement with the configuration."""
    problems: list[str] = []
    [sts] = find(objects, "StatefulSet", "stream-app-worker") or [None]
    if sts is None:
        return ["no StatefulSet stream-app-worker"]
    pod = sts["spec"]["template"]["spec"]
    labels = sts["spec"]["template"]["metadata"].get("labels", {})
    container = worker_container(sts)
    try:
        settings, _ = effective_settings(objects, sts)
    except Exception as exc:  # AssertionError from here, or the loader's ConfigError naming key and value
        return [f"configuration: {exc}"]

    # One namespace for everything (an object without one lands in kubectl's current namespace).
    spaces = {o["metadata"].get("namespace") for o in objects if o.get("kind") not in CLUSTER_SCOPED}
    if len(spaces) != 1 or None in spaces:
        problems.append(f"namespaced objects must all name the same namespace, found {sorted(map(str, spaces))}")

    # Selectors select the pods.
    if not _selects(sts["spec"]["selector"].get("matchLabels", {}), labels):
        problems.append("StatefulSet selector does not match its pod template labels")
    [svc] = find(objects, "Service", sts["spec"].get("serviceName")) or [None]
    if svc is None:
        problems.append(f"StatefulSet serviceName {sts['spec'].get('serviceName')!r}: no such Service")
    else:
        if svc["spec"].get("clusterIP") != "None":
            problems.append("the StatefulSet's Service must be headless (clusterIP: None)")
        if not _selects(svc["spec"].get("selector", {}), labels):
            problems.append("Service selector does not match the worker pods")
        ports = {p.get("name"): p for p in svc["spec"].get("ports", [])}
        if "metrics" not in ports or ports["metrics"].get("port") != settings.metrics.port:
            problems.append(f"Service needs a port named metrics = metrics.port ({settings.metrics.port})")
    pdbs = find(objects, "PodDisruptionBudget")
    if not pdbs:
        problems.append("no PodDisruptionBudget")
    for pdb in pdbs:
        if not _selects(pdb["spec"].get("selector", {}).get("matchLabels", {}), labels):
            problems.append(f"PodDisruptionBudget {name_of(pdb)} does not select the worker pods")
        if pdb["spec"].get("maxUnavailable") != 1 or "minAvailable" in pdb["spec"]:
            problems.append("PodDisruptionBudget: maxUnavailable 1 (minAvailable would block drains at 1 replica)")
    for sm in find(objects, "ServiceMonitor"):
        if svc is None or not _selects(sm["spec"]["selector"].get("matchLabels", {}), svc["metadata"]["labels"]):
            problems.append(f"ServiceMonitor {name_of(sm)} does not select the worker Service")
        if any(e.get("port") != "metrics" for e in sm["spec"].get("endpoints", [])):
            problems.append(f"ServiceMonitor {name_of(sm)} must scrape the port named metrics")

    # Probes and port.
    ports = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    if ports.get("metrics") != settings.metrics.port:
        problems.append(f"worker: containerPort metrics must be metrics.port ({settings.metrics.port})")
    if settings.metrics.host not in ("0.0.0.0", "::"):
        problems.append(f"metrics.host {settings.metrics.host!r}: probes cannot reach a loopback address")
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        got = container.get(probe, {}).get("httpGet", {})
        if got.get("path") != path or got.get("port") not in ("metrics", settings.metrics.port):
            problems.append(f"worker: {probe} must GET {path} on the metrics port, has {got or 'none'}")
    annotations = sts["spec"]["template"]["metadata"].get("annotations", {})
    if not find(objects, "ServiceMonitor") and annotations.get("prometheus.io/scrape") != "true":
        problems.append("no ServiceMonitor and no prometheus.io/scrape annotation: nothing scrapes the workers")
    if annotations.get("prometheus.io/port", str(settings.metrics.port)) != str(settings.metrics.port):
        problems.append("prometheus.io/port annotation is not metrics.port")

    # Stopping: long enough for the graceful stop (drain, commit, leave the group).
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if not grace > stop_budget(settings.worker.drain_timeout):
        problems.append(f"terminationGracePeriodSeconds {grace} must exceed the graceful stop (worker.drain_timeout)")

    # State and writable paths.
    claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
    data_mount = _mount_for(container, settings.worker.data_dir)
    if data_mount is None or data_mount["name"] not in claims:
        problems.append(f"worker.data_dir {settings.worker.data_dir} is not on a volumeClaimTemplate")
    if container.get("securityContext", {}).get("readOnlyRootFilesystem"):
        for what, path in (("caching.l2_path", settings.caching.l2_path), ("/tmp", "/tmp")):
            mount = _mount_for(container, path)
            if mount is None or mount.get("readOnly"):
                problems.append(f"read-only root filesystem: {what} ({path}) needs a writable volume")

    # Memory from the measured figures; CPU threads from the limit.
    problems += _resource_problems(container, settings)

    # The pod security "restricted" profile the namespace enforces.
    problems += _restricted_problems(pod)

    # Init containers run with the worker's configuration and image.
    worker_env = {item["name"]: item for item in container.get("env", [])}
    for init in pod.get("initContainers", []):
        if init.get("image") != container.get("image"):
            problems.append(f"initContainer {init['name']}: image differs from the worker's")
        for item in init.get("env", []):
            if worker_env.get(item["name"]) != item:
                problems.append(f"initContainer {init['name']}: env {item['name']} differs from the worker's")

    # References to Secrets and ConfigMaps resolve.
    problems += _reference_problems(objects, pod)

    # KEDA.
    problems += _keda_problems(objects, sts, settings)
    return problems


def all_problems(objects: list[dict[str, Any]]) -> list[str]:
    """Schema problems of a rendered set of objects; when there are none, the semantic ones.

    The semantic checks read fields the schemas guarantee (types, required keys), so they run only on
    objects that passed them.
    """
    problems = [p for obj in objects for p in schema_problems(obj)]
    return problems or semantic_problems(objects)


# --- measured memory ------------------------------------------------------------------------------


def measured_worker_rss_mib() -> tuple[float, float]:
    """Return (headline, highest) worker RSS figures, MiB, printed by the benchmarks in docs/benchmarks.

    Headline: ``worker_peak_rss_mb`` of precision.md's latest run (a worker serving 4 streams under the
    512 MB budget). Highest: every ``worker_peak_rss_mb`` / ``rss_max_mb`` any benchmark doc reports.
    The benchmarks print ``rss / 2**20``, so these "MB" are MiB.
    """
    precision = (BENCHMARKS / "precision.md").read_text()
    headline = re.search(r"`worker_peak_rss_mb` (\d+(?:\.\d+)?)", precision)
    figures = [
        float(m[1])
        for doc in sorted(BENCHMARKS.glob("*.md"))
        for m in re.finditer(r"(?:worker_peak_rss_mb|rss_max_mb)[`\"]?:? *(\d+(?:\.\d+)?)", doc.read_text())
    ]
    if headline is None or not figures:
        raise AssertionError("docs/benchmarks no longer print worker_peak_rss_mb / rss_max_mb: resize by hand")
    return float(headline[1]), max(figures)


def quantity(value: str | int | float) -> float:
    """Parse a Kubernetes quantity (``512Mi``, ``1Gi``, ``500m``, ``2``) into a plain number."""
    text = str(value)
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T|m)?", text)
    if not match:
        raise ValueError(f"not a quantity: {text!r}")
    factor = {
        None: 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
        "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
    }[match[2]]  # fmt: skip
    return float(match[1]) * factor


# --- helpers --------------------------------------------------------------------------------------


def _resource_problems(container: dict[str, Any], settings: Settings) -> list[str]:
    problems = []
    resources = container.get("resources", {})
    requests, limits = resources.get("requests", {}), resources.get("limits", {})
    if "memory" not in requests or "memory" not in limits:
        return ["worker: memory request and limit are both required"]
    request, limit = quantity(requests["memory"]) / 2**20, quantity(limits["memory"]) / 2**20
    headline, highest = measured_worker_rss_mib()
    budget = settings.optimization.memory_budget / 2**20
    if request < max(headline, budget):
        problems.append(
            f"worker: memory request {request:.0f} MiB is below the measured peak ({headline:.0f} MiB, "
            f"docs/benchmarks/precision.md) or optimization.memory_budget ({budget:.0f} MiB)"
        )
    if limit < highest or limit < request:
        problems.append(f"worker: memory limit {limit:.0f} MiB is below the highest measured RSS ({highest:.0f} MiB)")
    if "cpu" not in requests or "cpu" not in limits:
        problems.append("worker: cpu request and limit are both required")
        return problems
    cores = [e for e in container.get("env", []) if e["name"] == "STREAM_APP_PARALLEL__CPU_CORES"]
    ref = cores[0].get("valueFrom", {}).get("resourceFieldRef", {}) if cores else {}
    if ref.get("resource") != "limits.cpu" and settings.parallel.intra_threads == 0:
        problems.append("worker: parallel.cpu_cores would count the node's cores: take it from limits.cpu")
    return problems


def _restricted_problems(pod: dict[str, Any]) -> list[str]:
    problems = []
    pod_sc = pod.get("securityContext", {})
    if not pod_sc.get("runAsNonRoot"):
        problems.append("pod: runAsNonRoot must be true")
    if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append("pod: seccompProfile RuntimeDefault")
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        sc = c.get("securityContext", {})
        if sc.get("allowPrivilegeEscalation") is not False:
            problems.append(f"container {c['name']}: allowPrivilegeEscalation must be false")
        if sc.get("capabilities", {}).get("drop") != ["ALL"]:
            problems.append(f"container {c['name']}: capabilities must drop ALL")
    for volume in pod.get("volumes", []):
        if not set(volume) - {"name"} <= {"configMap", "secret", "emptyDir", "persistentVolumeClaim", "projected"}:
            problems.append(f"volume {volume['name']}: type not allowed by the restricted profile")
    return problems


def _reference_problems(objects: list[dict[str, Any]], pod: dict[str, Any]) -> list[str]:
    problems = []
    for volume in pod.get("volumes", []):
        if "secret" in volume and not find(objects, "Secret", volume["secret"]["secretName"]):
            problems.append(f"volume {volume['name']}: Secret {volume['secret']['secretName']} not defined")
        if "configMap" in volume and not find(objects, "ConfigMap", volume["configMap"]["name"]):
            problems.append(f"volume {volume['name']}: ConfigMap {volume['configMap']['name']} not defined")
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        for item in c.get("env", []):
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref and ref["key"] not in _secret_data(objects, ref["name"]):
                missing = f"Secret {ref['name']} has no {ref['key']!r}"
                problems.append(f"container {c['name']}: env {item['name']}: {missing}")
        names = {v["name"] for v in pod.get("volumes", [])}
        for mount in c.get("volumeMounts", []):
            if mount["name"] not in names and mount["name"] != "data":
                problems.append(f"container {c['name']}: volumeMount {mount['name']} has no volume")
    return problems


def _keda_problems(objects: list[dict[str, Any]], sts: dict[str, Any], settings: Settings) -> list[str]:
    problems = []
    scaled = find(objects, "ScaledObject")
    if not scaled:
        return ["no KEDA ScaledObject"]
    for so in scaled:
        spec = so["spec"]
        target = spec["scaleTargetRef"]
        if (target.get("kind"), target.get("name")) != ("StatefulSet", name_of(sts)):
            problems.append(f"ScaledObject {name_of(so)} does not target StatefulSet {name_of(sts)}")
        low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
        if not 1 <= low <= high <= settings.kafka.partitions:
            problems.append(
                f"ScaledObject: need 1 <= minReplicaCount ({low}) <= maxReplicaCount ({high}) <= "
                f"kafka.partitions ({settings.kafka.partitions})"
            )
        containers = {c["name"]: c for c in sts["spec"]["template"]["spec"]["containers"]}
        env_container = containers.get(target.get("envSourceContainerName", "worker"))
        env = _plain_env(env_container) if env_container else {}
        for trigger in spec["triggers"]:
            if trigger["type"] != "kafka":
                continue
            meta = trigger["metadata"]
            for key, expected in (
                ("bootstrapServers", settings.kafka.bootstrap_servers),
                ("consumerGroup", settings.kafka.group_id),
                ("topic", settings.kafka.input_topic),
            ):
                got = meta.get(key, env.get(meta.get(f"{key}FromEnv", "")))
                if got != expected:
                    problems.append(f"ScaledObject {key}: {got!r}, the workers use {expected!r}")
            if not str(meta.get("lagThreshold", "")).isdigit() or int(meta["lagThreshold"]) < 1:
                problems.append("ScaledObject lagThreshold must be a positive integer")
            if meta.get("allowIdleConsumers", "false") != "false":
                problems.append("ScaledObject allowIdleConsumers would scale beyond the partitions")
            if meta.get("offsetResetPolicy") != "earliest":
                problems.append("ScaledObject offsetResetPolicy must be earliest, as the workers' auto_offset_reset")
            protocol = settings.kafka.security_protocol
            want_tls = "enable" if protocol in ("SSL", "SASL_SSL") else "disable"
            if meta.get("tls", "disable") != want_tls:
                problems.append(f"ScaledObject tls {meta.get('tls')!r} disagrees with security_protocol {protocol}")
            mechanism = getattr(settings.kafka, "sasl_mechanism", None) or config_toml(objects, sts)[1].get(
                "kafka", {}
            ).get("sasl_mechanism", "PLAIN")
            want_sasl = KEDA_SASL.get(str(mechanism), f"unknown mechanism {mechanism}")
            if not protocol.startswith("SASL_"):
                want_sasl = "none"
            if meta.get("sasl", "none") != want_sasl:
                problems.append(f"ScaledObject sasl {meta.get('sasl')!r}, the workers use {want_sasl!r}")
            auth = trigger.get("authenticationRef", {}).get("name")
            if want_sasl != "none" and not auth:
                problems.append("ScaledObject: SASL needs an authenticationRef")
            for ta in find(objects, "TriggerAuthentication", auth) if auth else []:
                for ref in ta["spec"].get("secretTargetRef", []):
                    if ref["key"] not in _secret_data(objects, ref["name"]):
                        problems.append(f"TriggerAuthentication {auth}: Secret {ref['name']} has no {ref['key']!r}")
            if auth and not find(objects, "TriggerAuthentication", auth):
                problems.append(f"ScaledObject authenticationRef {auth!r}: no such TriggerAuthentication")
    return problems


def known_settings() -> set[str]:
    """Every ``section.key`` the current `Settings` define."""
    defaults = Settings()
    return {
        f"{section.name}.{f.name}"
        for section in dataclasses.fields(defaults)
        for f in dataclasses.fields(getattr(defaults, section.name))
    }


def _env_from(objects: list[dict[str, Any]], container: dict[str, Any], item: dict[str, Any]) -> Any:
    source = item.get("valueFrom", {})
    if "secretKeyRef" in source:
        ref = source["secretKeyRef"]
        data = _secret_data(objects, ref["name"])
        if ref["key"] not in data:
            raise AssertionError(f"env {item['name']}: Secret {ref['name']} has no key {ref['key']!r}")
        return data[ref["key"]]
    if "resourceFieldRef" in source:
        ref = source["resourceFieldRef"]
        kind, _, resource = ref["resource"].partition(".")
        amount = quantity(container["resources"][kind][resource]) / quantity(ref.get("divisor", "1"))
        return math.ceil(amount)
    raise AssertionError(f"env {item['name']}: valueFrom {sorted(source)} not understood by the test")


def _plain_env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item["value"] for item in container.get("env", []) if "value" in item}


def _secret_data(objects: list[dict[str, Any]], name: str) -> dict[str, str]:
    data: dict[str, str] = {}
    for secret in find(objects, "Secret", name):
        data.update(secret.get("stringData", {}))
        data.update({k: "<base64>" for k in secret.get("data", {})})
    return data


def _mount_for(container: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The volumeMount whose mountPath holds ``path`` (the deepest one)."""
    target = Path(path)
    best = None
    for mount in container.get("volumeMounts", []):
        base = Path(mount["mountPath"])
        if (target == base or base in target.parents) and (
            best is None or len(base.parts) > len(Path(best["mountPath"]).parts)
        ):
            best = mount
    return best


def _mounted_source(sts: dict[str, Any], container: dict[str, Any], path: str) -> tuple[str, str, str] | None:
    """For a file path inside a configMap/secret volume: ("configMap"|"secret", object name, key)."""
    mount = _mount_for(container, path)
    if mount is None or Path(path).parent != Path(mount["mountPath"]):
        return None
    volumes = {v["name"]: v for v in sts["spec"]["template"]["spec"].get("volumes", [])}
    volume = volumes.get(mount["name"], {})
    key = Path(path).name
    if "configMap" in volume:
        return "configMap", volume["configMap"]["name"], key
    if "secret" in volume:
        return "secret", volume["secret"]["secretName"], key
    return None


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _toml_literal(value: Any) -> str:
    """Write a value read from TOML back as TOML (strings, numbers, booleans and lists of them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_literal(v) for v in value) + "]"
    raise AssertionError(f"stream-app.toml: value {value!r} has a type the test cannot write back")
