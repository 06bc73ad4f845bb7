"""Render deploy/k8s the way `kubectl apply -k` would, and validate each object against its schema.

There is no kustomize binary on these machines (nor on PyPI), so `render` implements the part of
kustomize the manifests use: `resources` (files and directories), `namespace` and `configMapGenerator`
from files. Any other kustomization field is refused, so a transformer added later cannot be silently
ignored here. Schemas: Kubernetes' own kinds through `kubernetes-validate` (strict: unknown fields are
errors, as with `kubectl apply`); KEDA and Prometheus Operator kinds through deploy/schemas.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml

REPO = Path(__file__).resolve().parents[3]
K8S = REPO / "deploy" / "k8s"
SCHEMAS = REPO / "deploy" / "schemas"

# The oldest Kubernetes the README promises, and the newest kubernetes-validate knows.
K8S_VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())

CRD_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "keda-scaledobject-v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "keda-triggerauthentication-v1alpha1.json",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring-servicemonitor-v1.json",
}
CLUSTER_SCOPED = {"Namespace"}
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "namespace", "resources", "configMapGenerator"}


class RenderError(Exception):
    """The kustomization cannot be rendered (missing file, unsupported field, duplicate object)."""


# --- rendering ------------------------------------------------------------------------------------


def render(directory: Path, used: set[Path] | None = None) -> list[dict[str, Any]]:
    """Return the objects ``kubectl apply -k directory`` would send (generated names without hash)."""
    used = set() if used is None else used
    kust_file = directory / "kustomization.yaml"
    if not kust_file.is_file():
        raise RenderError(f"{directory}: no kustomization.yaml")
    used.add(kust_file.resolve())
    kust = yaml.safe_load(kust_file.read_text()) or {}
    unknown = set(kust) - KUSTOMIZATION_KEYS
    if unknown:
        raise RenderError(f"{kust_file}: fields the test renderer does not implement: {sorted(unknown)}")
    objects: list[dict[str, Any]] = []
    for entry in kust.get("resources", []):
        path = directory / entry
        if path.is_dir():
            objects += render(path, used)
        elif path.is_file():
            used.add(path.resolve())
            objects += [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
        else:
            raise RenderError(f"{kust_file}: resource {entry!r} not found")
    for gen in kust.get("configMapGenerator", []):
        if set(gen) - {"name", "files"}:
            raise RenderError(f"{kust_file}: configMapGenerator fields not implemented: {sorted(set(gen))}")
        data: dict[str, str] = {}
        for spec in gen["files"]:
            key, _, rel = spec.rpartition("=") if "=" in spec else (Path(spec).name, "", spec)
            source = directory / rel
            if not source.is_file():
                raise RenderError(f"{kust_file}: configMapGenerator file {rel!r} not found")
            used.add(source.resolve())
            data[key] = source.read_text()
        objects.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}, "data": data})
    namespace = kust.get("namespace")
    if namespace:
        for obj in objects:
            if obj.get("kind") == "Namespace":
                obj["metadata"]["name"] = namespace
            elif obj.get("kind") not in CLUSTER_SCOPED:
                obj.setdefault("metadata", {})["namespace"] = namespace
    seen: set[tuple[str, str, str]] = set()
    for obj in objects:
        ident = (obj.get("kind", "?"), obj.get("metadata", {}).get("namespace", ""), name_of(obj))
        if ident in seen:
            raise RenderError(f"{directory}: {ident} defined twice")
        seen.add(ident)
    return objects


def kustomization_dirs(root: Path = K8S) -> list[Path]:
    """Every folder under deploy/k8s that holds a kustomization (what a user can apply)."""
    return sorted(p.parent for p in root.rglob("kustomization.yaml"))


# --- schemas --------------------------------------------------------------------------------------


@cache
def _crd_validator(filename: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / filename).read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)  # type: ignore[no-any-return]


def schema_problems(obj: dict[str, Any]) -> list[str]:
    """Validate one object against its schema; return readable problems (empty when valid)."""
    what = f"{obj.get('kind')}/{name_of(obj)}"
    key = (obj.get("apiVersion"), obj.get("kind"))
    if key in CRD_SCHEMAS:
        validator = _crd_validator(CRD_SCHEMAS[key])  # type: ignore[index]
        return [f"{what}: {e.message} at {_path(e.absolute_path)}" for e in validator.iter_errors(obj)]
    return list(_kubernetes_problems(json.dumps(obj, sort_keys=True)))


@cache
def _kubernetes_problems(document: str) -> tuple[str, ...]:
    """Validate against each Kubernetes version (cached: the mutation tests re-check unchanged objects)."""
    obj = json.loads(document)
    what = f"{obj.get('kind')}/{name_of(obj)}"
    problems = []
    for version in K8S_VERSIONS:
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.utils.ValidationError as exc:
            problems.append(f"{what} (Kubernetes {version}): {exc.message} at {_path(exc.absolute_path)}")
        except kubernetes_validate.utils.SchemaNotFoundError as exc:
            problems.append(f"{what}: {exc.message}")
    return tuple(problems)


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Objects of a kind (and name)."""
    return [o for o in objects if o.get("kind") == kind and (name is None or name_of(o) == name)]


def name_of(obj: dict[str, Any]) -> str:
    """An object's metadata.name ("?" when it has none)."""
    return str(obj.get("metadata", {}).get("name", "?"))


def _path(parts: Any) -> str:
    return "/".join(str(p) for p in parts) or "(top)"
