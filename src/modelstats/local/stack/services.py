"""The Knative Services of the manifests as local processes: each container's command and
environment.

A function runs exactly as its container would (see infra/Dockerfile): the same command, the
manifest's literal environment, with what only makes sense in a cluster left out.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

from modelstats.core.settings import from_environment
from modelstats.local.knative.resources import Service

DEFAULT_THREADS = "4"


def image_function(image: str) -> str:
    """`modelstats-ingest:1.2` or `registry/x/modelstats-ingest` -> `ingest`."""
    name = image.rsplit("/", 1)[-1].split("@")[0].split(":")[0]
    return name.removeprefix("modelstats-")


def service_argv(service: Service, bin_dir: Path) -> list[str]:
    """The container's command, as the image would run it (see infra/Dockerfile):
    `functions-framework --source functions/<F>/main.py --target <F>`, F from the image name,
    unless the Service overrides `command` (then command + args) or `args`."""
    container = service.container
    function = image_function(container.image) if container.image else service.name
    source = ["functions-framework", "--source", f"functions/{function}/main.py"]
    if container.command:
        argv = [*container.command, *container.args]
    elif container.args and not container.args[0].startswith("-"):
        argv = list(container.args)
    elif container.args:
        argv = [*source, *container.args]
    else:
        argv = [*source, "--target", function]
    local = bin_dir / argv[0]
    if "/" not in argv[0] and local.exists():
        argv[0] = str(local)
    return argv


def service_env(
    service: Service, parent: Mapping[str, str], data_dir: Path, extra: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """Manifest literals, overridden by the parent environment, then `extra`; returns the
    environment and the manifest variables left out (cluster paths that do not exist here)."""
    env: dict[str, str] = {}
    skipped: list[str] = []
    for name, value in service.container.env.items():
        if name in extra:
            continue
        if value.startswith("/") and not Path(value).exists():
            skipped.append(name)
            continue
        env[name] = value
    env.update(parent)
    env.setdefault("THREADS", DEFAULT_THREADS)
    runtime = data_dir / "run" / service.name
    runtime.mkdir(parents=True, exist_ok=True)
    # gunicorn's control socket: one directory per process, or they collide.
    env["XDG_RUNTIME_DIR"] = str(runtime)
    env["K_SERVICE"] = service.name
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    _metrics_dir(env, runtime)
    return env, skipped


def left_out(service: Service, name: str) -> str:
    """What a variable that `service_env` left out means, for the one reading the stack's
    output: the manifest's path is the cluster's, and the function falls back on its default
    (the settings' field of the same name), e.g. alert reads the checkout's rules file."""
    default = getattr(from_environment({}), name.lower(), None)
    instead = "its default" if default is None else f"its default, {default}"
    if isinstance(default, str) and not default.startswith("/"):
        instead += " in the checkout"
    return (
        f"{service.name}: {name}={service.container.env[name]} is a path in the cluster's"
        f" container (a mounted ConfigMap or volume), not on this machine: not passed, so"
        f" {service.name} uses {instead}"
    )


def _metrics_dir(env: dict[str, str], runtime: Path) -> None:
    """Several gunicorn workers count into files of one directory per service, empty at start
    (core/metrics.py); one worker counts in memory. An inherited directory is never shared:
    two services counting into one would report each other's counts."""
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    if env.get("WORKERS", "1").strip() in ("", "1"):
        return
    directory = runtime / "prometheus"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
