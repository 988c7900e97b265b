"""Coherence of infra/: the routing closes, the sizes add up, the kn script and the YAML describe
the same objects, the image runs the command the local stack runs, the production overlay
renders. Nothing here needs a cluster or a Docker engine: infra/*.sh run against recording
stand-ins for kn, kubectl and minikube.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from modelstats.core import contract
from modelstats.devtools import checks, schemas, webhooks

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MANIFESTS = INFRA / "knative"
RULES = MANIFESTS / "rules" / "alert-rules.yaml"
MONITORS = MANIFESTS / "monitors" / "monitors.yaml"
DEMO = INFRA / "overlays" / "demo"
CRDS = INFRA / "crds"
NAMESPACE = "modelstats"

# Event types and who produces them (DESIGN.md, "Event contract"). Replies are keyed by the
# Knative Service that sends them.
# Sent by model servers, loggers and PingSources (inference.logged by the reporter too).
EXTERNAL_TYPES = {
    contract.METRIC_REPORTED,
    contract.PING,
    *contract.INFERENCE_TYPES,
    contract.LABEL_REPORTED,
}
REPLIES = {
    "ingest": {contract.METRIC_STORED},
    "alert": {contract.ALERT_FIRED, contract.ALERT_RESOLVED},
    "etl": {contract.METRIC_REPORTED},
    "stats": set(),
    "deadletters": set(),
}
FUNCTIONS = ("ingest", "stats", "alert", "etl")
# What kn's `--security-context strict` writes on the container.
KN_STRICT = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def documents(directory: Path = MANIFESTS) -> list[dict[str, Any]]:
    return [d.body for d in checks.load_documents(checks.manifest_files(directory))]


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return documents()


@pytest.fixture(scope="module")
def services(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        n: d for n, d in of_kind(docs, "Service").items() if d["apiVersion"].startswith("serving.")
    }


def container_of(service: dict[str, Any]) -> dict[str, Any]:
    containers = service["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    result: dict[str, Any] = containers[0]
    return result


def env_values(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# --- vendored data ---------------------------------------------------------------------------


def test_vendored_crds_match_their_recorded_checksums() -> None:
    source = (CRDS / "SOURCE.md").read_text()
    recorded = dict(
        (name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", source, re.M)
    )
    files = sorted(p.name for p in CRDS.glob("*.yaml"))
    assert sorted(recorded) == files and len(files) == 7
    for name, digest in recorded.items():
        assert hashlib.sha256((CRDS / name).read_bytes()).hexdigest() == digest, name
    assert "Apache License, Version 2.0" in (CRDS / "README.md").read_text()


def test_kustomization_lists_every_manifest_file() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    files = {p.name for p in checks.manifest_files(MANIFESTS)} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert kustomization["namespace"] == NAMESPACE


def test_every_namespaced_object_names_its_namespace(docs: list[dict[str, Any]]) -> None:
    # The local stack reads metadata.namespace (the broker's ingress path is /<ns>/<broker>).
    for doc in docs:
        if doc["kind"] in ("Namespace", "Kustomization"):
            continue
        assert doc["metadata"].get("namespace") == NAMESPACE, doc["metadata"]["name"]


# --- routing ---------------------------------------------------------------------------------


@dataclass
class Route:
    trigger: str
    attributes: dict[str, str]
    subscriber: str


def routes(docs: list[dict[str, Any]]) -> list[Route]:
    result = []
    for name, trigger in of_kind(docs, "Trigger").items():
        spec = trigger["spec"]
        assert not spec.get("filters"), "routing uses filter.attributes, which kn can write"
        ref = spec["subscriber"]["ref"]
        assert (ref["apiVersion"], ref["kind"]) == ("serving.knative.dev/v1", "Service")
        result.append(Route(name, dict(spec["filter"]["attributes"]), ref["name"]))
    return result


def loop_problems(found: list[Route]) -> list[str]:
    """Types a subscriber replies with that route back into the graph in a cycle."""
    edges: dict[str, set[str]] = {}
    for route in found:
        edges.setdefault(route.attributes["type"], set()).update(REPLIES[route.subscriber])
    problems = []
    for route in found:
        if route.attributes["type"] in REPLIES[route.subscriber]:
            problems.append(f"{route.trigger} matches what {route.subscriber} replies")

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        for nxt in edges.get(start, ()):
            if nxt == goal or (nxt not in seen and reaches(nxt, goal, seen | {nxt})):
                return True
        return False

    problems += [f"cycle through {t}" for t in edges if reaches(t, t, {t})]
    return problems


def test_every_trigger_routes_a_produced_type_to_an_existing_service(
    docs: list[dict[str, Any]], services: dict[str, dict[str, Any]]
) -> None:
    produced = EXTERNAL_TYPES | set().union(*REPLIES.values())
    brokers = of_kind(docs, "Broker")
    found = routes(docs)
    assert {r.subscriber for r in found} == {"ingest", "alert", "etl"}
    for route in found:
        assert route.attributes.get("type") in produced, route.trigger
        assert route.subscriber in services, route.trigger
    for trigger in of_kind(docs, "Trigger").values():
        assert trigger["spec"]["broker"] in brokers


def test_each_ping_source_has_one_trigger_that_matches_it_exactly(
    docs: list[dict[str, Any]],
) -> None:
    pings = of_kind(docs, "PingSource")
    assert set(pings) >= {"etl-schedule", "alert-schedule"}
    for name, ping in pings.items():
        metadata = ping["metadata"]
        source = contract.ping_source(metadata["namespace"], metadata["name"])
        matching = [r for r in routes(docs) if r.attributes.get("source") == source]
        assert [r.attributes for r in matching] == [{"type": contract.PING, "source": source}]
        assert ping["spec"]["sink"]["ref"]["kind"] == "Broker", name
        assert ping["spec"]["sink"]["ref"]["name"] in of_kind(docs, "Broker"), name
    subscribers = {r.subscriber for r in routes(docs) if r.attributes["type"] == contract.PING}
    assert subscribers == {"etl", "alert"}
    # The alert function's clock carries nothing; any ping reaches alert only through it.
    assert "data" not in pings["alert-schedule"]["spec"]
    # The base's etl schedule runs the inference job; the synthetic one is the demo overlay's.
    assert json.loads(pings["etl-schedule"]["spec"]["data"]) == {"source": "inference"}


def test_no_reply_loops(docs: list[dict[str, Any]]) -> None:
    assert loop_problems(routes(docs)) == []


def test_the_loop_check_catches_loops() -> None:
    own = [Route("t", {"type": "modelstats.metric.stored"}, "ingest")]
    assert loop_problems(own) == [
        "t matches what ingest replies",
        "cycle through modelstats.metric.stored",
    ]
    # etl replies metric.reported; a trigger sending metric.stored to etl closes a cycle.
    cycle = [
        Route("a", {"type": "modelstats.metric.reported"}, "ingest"),
        Route("b", {"type": "modelstats.metric.stored"}, "etl"),
    ]
    assert "cycle through modelstats.metric.reported" in loop_problems(cycle)


def test_dead_letters_go_to_a_cluster_local_service_no_trigger_feeds(
    docs: list[dict[str, Any]], services: dict[str, dict[str, Any]]
) -> None:
    (broker,) = of_kind(docs, "Broker").values()
    delivery = broker["spec"]["delivery"]
    assert delivery["backoffPolicy"] == "exponential" and delivery["retry"] >= 3
    sink = delivery["deadLetterSink"]["ref"]
    assert (sink["apiVersion"], sink["kind"], sink["name"]) == (
        "serving.knative.dev/v1",
        "Service",
        "deadletters",
    )
    assert sink["name"] in services
    assert all(r.subscriber != "deadletters" for r in routes(docs))
    assert (
        broker["metadata"]["annotations"][contract.BROKER_CLASS_ANNOTATION]
        == "MTChannelBasedBroker"
    )
    assert broker["spec"]["config"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "config-br-default-channel",
        "namespace": "knative-eventing",
    }


# --- the Knative Services --------------------------------------------------------------------


def image_function(image: str) -> str:
    match = re.fullmatch(r"dev\.local/modelstats-([a-z]+):latest", image)
    assert match, image
    return match.group(1)


def test_container_command_convention(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == {*FUNCTIONS, "deadletters"}
    for name, service in services.items():
        container = container_of(service)
        function = image_function(container["image"])
        target = "dead_letters" if name == "deadletters" else name
        assert function == ("ingest" if name == "deadletters" else name)
        assert container["command"] == ["functions-framework"]
        assert container["args"] == [
            "--source",
            f"functions/{function}/main.py",
            "--target",
            target,
        ]
        assert container["imagePullPolicy"] == "IfNotPresent"
        assert container["ports"] == [{"containerPort": 8080}]


@pytest.mark.parametrize("name", [*FUNCTIONS, "deadletters"])
def test_the_target_exists_in_the_function_source(
    name: str, services: dict[str, dict[str, Any]]
) -> None:
    args = container_of(services[name])["args"]
    source = ROOT / args[1]
    assert source.exists(), f"{args[1]}: the service's source is missing"
    defined = rf"^((async )?def {args[3]}\(|{args[3]} = )"  # a decorated handler, or built
    assert re.search(defined, source.read_text(), re.M), args


def test_concurrency_threads_and_pool_are_one_number(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        template = service["spec"]["template"]
        env = env_values(container_of(service))
        threads = int(env["THREADS"])
        assert env["WORKERS"] == "1", name
        assert int(env["DB_POOL_SIZE"]) == threads == template["spec"]["containerConcurrency"], name
        annotations = template["metadata"]["annotations"]
        assert 0 < float(annotations["autoscaling.knative.dev/target"]) <= threads, name
        assert "annotations" not in service["metadata"], name


def test_every_service_waits_for_the_database_through_readiness(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        container = container_of(service)
        assert container["readinessProbe"]["httpGet"] == {"path": "/healthz"}, name
        # A liveness probe on /healthz would restart every pod during a database outage.
        assert "livenessProbe" not in container, name
        assert env_values(container)["DATABASE_URL"] == {
            "secretKeyRef": {"name": "modelstats-db", "key": "DATABASE_URL"}
        }
        assert container["resources"]["requests"].keys() == {"cpu", "memory"}
        assert container["securityContext"] == KN_STRICT, name


def test_only_stats_is_public(services: dict[str, dict[str, Any]]) -> None:
    public = {
        name
        for name, s in services.items()
        if s["metadata"].get("labels", {}).get(webhooks.VISIBILITY_LABEL) != "cluster-local"
    }
    assert public == {"stats"}


def test_alert_reads_the_rules_configmap_it_mounts(services: dict[str, dict[str, Any]]) -> None:
    alert = services["alert"]
    container = container_of(alert)
    rules_file = Path(env_values(container)["ALERT_RULES_FILE"])
    volumes = {v["name"]: v for v in alert["spec"]["template"]["spec"]["volumes"]}
    (mount,) = container["volumeMounts"]
    assert rules_file.parent == Path(mount["mountPath"])
    assert volumes[mount["name"]]["configMap"]["name"] == "alert-rules"
    # The kustomization generates that ConfigMap, under that very name, with this key; deploy.sh
    # builds the same one.
    generated = of_kind(render(MANIFESTS), "ConfigMap")["alert-rules"]
    assert generated["data"] == {rules_file.name: RULES.read_text()}
    script = (INFRA / "deploy.sh").read_text()
    assert f'--from-file={rules_file.name}="$MANIFESTS/rules/alert-rules.yaml"' in script


# Knative refuses volume mounts on these paths (serving pkg/apis/serving/k8s_validation.go).
KNATIVE_RESERVED_PATHS = {"/", "/dev", "/dev/log", "/tmp", "/var", "/var/log"}


def test_etl_reads_only_its_read_only_etl_root(services: dict[str, dict[str, Any]]) -> None:
    etl = services["etl"]
    container = container_of(etl)
    etl_root = env_values(container)["ETL_ROOT"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "inference-logs"]
    assert mount["mountPath"] == etl_root and mount["readOnly"] is True
    assert etl_root not in KNATIVE_RESERVED_PATHS
    (volume,) = [
        v for v in etl["spec"]["template"]["spec"]["volumes"] if v["name"] == "inference-logs"
    ]
    # emptyDir is the volume type Knative allows without a feature flag (a PVC needs one).
    assert volume == {"name": mount["name"], "emptyDir": {}}
    # The local stack replaces it: a cluster path is not passed to a local process.
    from modelstats.local.knative import manifests
    from modelstats.local.stack import services

    (local,) = [s for s in manifests.load(MANIFESTS).services if s.name == "etl"]
    env, _ = services.service_env(local, {}, Path("/nonexistent"), {"ETL_ROOT": "/here"})
    assert env["ETL_ROOT"] == "/here"


def test_etl_reads_the_monitors_configmap_it_mounts(services: dict[str, dict[str, Any]]) -> None:
    etl = services["etl"]
    container = container_of(etl)
    monitors_file = Path(env_values(container)["MONITORS_FILE"])
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "monitors"]
    assert monitors_file.parent == Path(mount["mountPath"]) and mount["readOnly"] is True
    volumes = {v["name"]: v for v in etl["spec"]["template"]["spec"]["volumes"]}
    assert volumes["monitors"]["configMap"]["name"] == "monitors"
    generated = of_kind(render(MANIFESTS), "ConfigMap")["monitors"]
    assert generated["data"] == {monitors_file.name: MONITORS.read_text()}
    script = (INFRA / "deploy.sh").read_text()
    assert f'--from-file={monitors_file.name}="$MANIFESTS/monitors/monitors.yaml"' in script
    assert f"--mount {mount['mountPath']}=cm:monitors" in script


def data_plane_policy(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return of_kind(docs, "NetworkPolicy")["functions-from-knative"]


def test_the_functions_only_knative_calls_accept_only_its_data_plane(
    docs: list[dict[str, Any]], services: dict[str, dict[str, Any]]
) -> None:
    spec = data_plane_policy(docs)["spec"]
    # Every cluster-local Service, selected by the label Knative puts on its pods; not stats.
    (selector,) = spec["podSelector"]["matchExpressions"]
    assert (selector["key"], selector["operator"]) == ("serving.knative.dev/service", "In")
    cluster_local = {
        name
        for name, s in services.items()
        if s["metadata"].get("labels", {}).get(webhooks.VISIBILITY_LABEL) == "cluster-local"
    }
    assert set(selector["values"]) == cluster_local == {"ingest", "alert", "etl", "deadletters"}
    # Ingress only (the functions still reach PostgreSQL and webhooks), from namespaces only,
    # on any port (queue-proxy serves 8012 and the autoscaler's metrics on 9090).
    assert spec["policyTypes"] == ["Ingress"]
    (rule,) = spec["ingress"]
    assert set(rule) == {"from"}
    (source,) = rule["from"]
    assert set(source) == {"namespaceSelector"}
    (namespaces,) = source["namespaceSelector"]["matchExpressions"]
    assert (namespaces["key"], namespaces["operator"]) == ("kubernetes.io/metadata.name", "In")
    assert set(namespaces["values"]) == {"knative-eventing", "knative-serving", "kourier-system"}


def test_database_url_points_at_the_in_cluster_postgres(docs: list[dict[str, Any]]) -> None:
    secret = of_kind(docs, "Secret")["modelstats-db"]["stringData"]
    url = urlsplit(secret["DATABASE_URL"])
    service = of_kind(docs, "Service")["postgres"]
    assert url.hostname == f"{service['metadata']['name']}.{NAMESPACE}.svc.cluster.local"
    assert url.port == service["spec"]["ports"][0]["port"]
    assert (url.username, url.password, url.path.lstrip("/")) == (
        secret["POSTGRES_USER"],
        secret["POSTGRES_PASSWORD"],
        secret["POSTGRES_DB"],
    )
    statefulset = of_kind(docs, "StatefulSet")["postgres"]
    selector = statefulset["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    assert statefulset["spec"]["template"]["metadata"]["labels"] == selector
    assert statefulset["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"


def connection_budget(services: dict[str, dict[str, Any]]) -> int:
    """Connections at every Service's max scale, twice (old and new revisions overlap during a
    rollout), plus the migration Job's one."""
    total = 0
    for service in services.values():
        max_scale = int(
            service["spec"]["template"]["metadata"]["annotations"][
                "autoscaling.knative.dev/max-scale"
            ]
        )
        assert max_scale > 0, "an unbounded Service could exhaust PostgreSQL's connections"
        total += max_scale * int(env_values(container_of(service))["DB_POOL_SIZE"])
    return 2 * total + 1


def test_postgres_has_room_for_every_pool(
    docs: list[dict[str, Any]], services: dict[str, dict[str, Any]]
) -> None:
    args = container_of(of_kind(docs, "StatefulSet")["postgres"])["args"]
    match = re.search(r"max_connections=(\d+)", " ".join(args))
    assert match is not None
    max_connections = int(match.group(1))
    reserved = 3  # superuser_reserved_connections
    assert connection_budget(services) <= max_connections - reserved
    bigger = copy.deepcopy(services)
    bigger["stats"]["spec"]["template"]["metadata"]["annotations"][
        "autoscaling.knative.dev/max-scale"
    ] = "20"
    assert connection_budget(bigger) > max_connections - reserved  # the check can fail


def test_migration_job_uses_the_ingest_image_and_retries(docs: list[dict[str, Any]]) -> None:
    job = of_kind(docs, "Job")["modelstats-migrate"]
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "dev.local/modelstats-ingest:latest"
    assert container["command"] == ["modelstats", "migrate"]
    assert pod["restartPolicy"] == "Never" and job["spec"]["backoffLimit"] >= 3
    assert container["securityContext"] == KN_STRICT


# --- the Dockerfile ----------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (INFRA / "Dockerfile").read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            result.append((instruction.upper(), rest.strip()))
    return result


def image_command(function: str) -> list[str]:
    """The image's default command for FUNCTION, as the shell in CMD would run it."""
    (cmd,) = [rest for instruction, rest in dockerfile() if instruction == "CMD"]
    argv = json.loads(cmd)
    assert argv[:2] == ["sh", "-c"]
    words = shlex.split(argv[2].replace("$FUNCTION", function).replace("${FUNCTION}", function))
    assert words[0] == "exec"
    return words[1:]


def test_image_runs_the_command_of_the_manifests(services: dict[str, dict[str, Any]]) -> None:
    for function in FUNCTIONS:
        container = container_of(services[function])
        assert image_command(function) == container["command"] + container["args"]
        assert image_command(function) == [
            "functions-framework",
            "--source",
            f"functions/{function}/main.py",
            "--target",
            function,
        ]


def test_dockerfile_layers() -> None:
    steps = dockerfile()
    instructions = [i for i, _ in steps]
    # The base is an argument (make image-test builds on Debian's Python), by default the
    # official image.
    assert steps[:2] == [("ARG", "BASE_IMAGE=python:3.11-slim"), ("FROM", "${BASE_IMAGE}")]
    copies = [rest for i, rest in steps if i == "COPY"]
    assert copies[0] == "pyproject.toml ./"
    # The dependency install comes after pyproject.toml and before any code is copied.
    first_code = next(n for n, (i, rest) in enumerate(steps) if i == "COPY" and "src" in rest)
    dependency_install = next(n for n, (i, rest) in enumerate(steps) if "pip install -r" in rest)
    assert steps.index(("COPY", "pyproject.toml ./")) < dependency_install < first_code
    # ARG FUNCTION after every install: the four images share those layers.
    arg = steps.index(("ARG", "FUNCTION"))
    assert all(n < arg for n, (_, rest) in enumerate(steps) if "pip install" in rest)
    (user,) = [rest for i, rest in steps if i == "USER"]
    assert re.fullmatch(r"[1-9]\d*(:\d+)?", user), "numeric, non-root (runAsNonRoot needs it)"
    assert instructions.index("USER") > max(n for n, i in enumerate(instructions) if i == "RUN")


def dockerignored(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    ignored = False
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*", "[^/]*")
        parts = path.split("/")
        prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_what_the_dockerfile_copies() -> None:
    sources = [rest.split()[0] for i, rest in dockerfile() if i == "COPY"]
    rules = str(RULES.relative_to(ROOT))
    assert sources == ["pyproject.toml", "README.md", "src", "functions", rules]
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not dockerignored(source), source
    for heavy in (".git", ".venv", "tests", "src/modelstats/__pycache__", "infra/deploy.sh"):
        assert dockerignored(heavy), heavy


# --- infra/*.sh against recording stand-ins -----------------------------------------------------

STUB = r'''#!{python}
"""Stand-in for {tool}: records its argv (and stdin for `-f -`), acts out a few answers."""
import json, os, sys
import yaml

tool, argv = {tool!r}, sys.argv[1:]
present = os.environ.get("FAKE_PRESENT") == "1"
call = {{"tool": tool, "argv": argv}}
if "-f" in argv and argv[argv.index("-f") + 1] == "-":
    call["stdin"] = sys.stdin.read()
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(call) + "\n")

def option(name):
    for n, arg in enumerate(argv):
        if arg == name:
            return argv[n + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None

if tool == "kn":
    if argv[:2] == ["service", "describe"] and "-o" in argv:
        print("http://stats.modelstats.127.0.0.1.sslip.io")
    elif "describe" in argv:
        sys.exit(0 if present else 1)
elif tool == "kubectl":
    if argv[:2] == ["get", "crd"]:
        sys.exit(1 if os.environ.get("FAKE_NO_KNATIVE") else 0)
    if argv[:2] == ["get", "secret"]:
        sys.exit(0 if present else 1)
    if argv[:3] == ["set", "image", "--local"]:
        job = yaml.safe_load(open(option("-f")))
        name, image = argv[-1].split("=", 1)
        for c in job["spec"]["template"]["spec"]["containers"]:
            if c["name"] == name:
                c["image"] = image
        print(yaml.safe_dump(job))
    elif argv[0] == "create" and "--dry-run=client" in argv:
        kind = "ConfigMap" if argv[1] == "configmap" else "Secret"
        name = argv[2] if kind == "ConfigMap" else argv[3]
        metadata = {{"name": name, "namespace": option("--namespace")}}
        obj = {{"apiVersion": "v1", "kind": kind, "metadata": metadata}}
        data = {{}}
        for arg in argv:
            if arg.startswith("--from-file="):
                key, path = arg.split("=", 1)[1].split("=", 1)
                data[key] = open(path).read()
            if arg.startswith("--from-literal="):
                key, value = arg.split("=", 1)[1].split("=", 1)
                data[key] = value
        obj["data" if kind == "ConfigMap" else "stringData"] = data
        print(yaml.safe_dump(obj))
elif tool == "minikube":
    if argv[0] == "status":
        sys.exit(0 if os.environ.get("FAKE_MINIKUBE_RUNNING") else 1)
    if argv[:2] == ["config", "get"]:
        sys.exit(1)
'''


@dataclass
class Run:
    returncode: int
    stderr: str
    calls: list[dict[str, Any]] = field(default_factory=list)

    def of(self, tool: str, *prefix: str) -> list[list[str]]:
        n = len(prefix)
        return [
            c["argv"] for c in self.calls if c["tool"] == tool and tuple(c["argv"][:n]) == prefix
        ]

    def index(self, tool: str, *prefix: str) -> int:
        n = len(prefix)
        for i, call in enumerate(self.calls):
            if call["tool"] == tool and tuple(call["argv"][:n]) == prefix:
                return i
        raise LookupError(f"no {tool} {' '.join(prefix)}")


def run_script(tmp_path: Path, script: str, *args: str, env: dict[str, str] | None = None) -> Run:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("kn", "kubectl", "minikube", "docker"):
        stub = bin_dir / tool
        stub.write_text(STUB.format(python=sys.executable, tool=tool))
        stub.chmod(0o755)
    log = tmp_path / "calls.jsonl"
    log.write_text("")
    environment = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FAKE_LOG": str(log),
        **(env or {}),
    }
    done = subprocess.run(
        ["bash", str(INFRA / script), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return Run(done.returncode, done.stderr, calls)


# Normalised views: what a kn command line and a YAML object say about a Knative Service.
KN_MULTI = {
    "--cmd",
    "--arg",
    "--env",
    "--env-value-from",
    "--env-from",
    "--request",
    "--limit",
    "--mount",
    "--filter",
}
KN_BOOLEAN = {"--cluster-local", "--no-cluster-local"}


def kn_flags(argv: list[str]) -> dict[str, Any]:
    flags: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        assert arg.startswith("--"), f"unexpected argument {arg!r} in {argv}"
        if arg in KN_BOOLEAN:
            flags[arg] = True
            i += 1
            continue
        name, eq, value = arg.partition("=")
        if not eq:
            value = argv[i + 1]
            i += 1
        i += 1
        if name in KN_MULTI:
            flags.setdefault(name, []).append(value)
        else:
            assert name not in flags, f"{name} given twice"
            flags[name] = value
    return flags


def key_values(items: list[str]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in ",".join(items).split(","))


def service_from_kn(argv: list[str]) -> tuple[str, dict[str, Any]]:
    assert argv[:2] == ["service", "apply"]
    name, flags = argv[2], kn_flags(argv[3:])
    env: dict[str, Any] = dict(e.split("=", 1) for e in flags.get("--env", []))
    for item in flags.get("--env-value-from", []):
        var, source = item.split("=", 1)
        prefix, secret, key = source.split(":")
        assert prefix == "secret"
        env[var] = ("secret", secret, key)
    scheme, host, port, path = flags["--probe-readiness"].split(":", 3)
    probe_opts = {
        k[0].lower() + k[1:]: int(v)
        for k, v in key_values([flags["--probe-readiness-opts"]]).items()
    }
    mounts = {}
    for item in flags.get("--mount", []):
        mount_path, source = item.split("=", 1)
        prefix, source_name, *options = source.split(":")
        if prefix == "cm":
            mounts[mount_path] = ("configMap", source_name, True)  # kn mounts ConfigMaps read-only
        else:
            assert prefix == "ed", item
            read_only = options == ["readOnly=true"]
            mounts[mount_path] = ("emptyDir", source_name, read_only)
    view = {
        "namespace": flags["--namespace"],
        "image": flags["--image"],
        "pull": flags["--pull-policy"],
        "command": flags["--cmd"],
        "args": flags["--arg"],
        "port": int(flags["--port"]),
        "env": env,
        "env_from": sorted(tuple(item.split(":", 1)) for item in flags.get("--env-from", [])),
        "concurrency": int(flags["--concurrency-limit"]),
        "scale": (
            int(flags["--scale-min"]),
            int(flags["--scale-max"]),
            int(flags["--scale-target"]),
        ),
        "readiness": {"scheme": scheme, "host": host, "port": port, "path": path, **probe_opts},
        "requests": key_values(flags["--request"]),
        "limits": key_values(flags["--limit"]),
        "security": flags["--security-context"],
        "cluster_local": bool(flags.get("--cluster-local")) and not flags.get("--no-cluster-local"),
        "mounts": mounts,
    }
    return name, view


def service_from_yaml(service: dict[str, Any]) -> dict[str, Any]:
    template = service["spec"]["template"]
    pod = template["spec"]
    container = container_of(service)
    env: dict[str, Any] = {}
    for item in container["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = ("secret", ref["name"], ref["key"])
    env_from = []
    for item in container.get("envFrom", []):
        assert item["secretRef"].get("optional") is True  # deploy.sh creates these Secrets
        env_from.append(("secret", item["secretRef"]["name"]))
    probe = dict(container["readinessProbe"])
    http = probe.pop("httpGet")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {}
    for mount in container.get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            source = ("configMap", volume["configMap"]["name"])
        else:
            assert volume.get("emptyDir") == {}, volume
            source = ("emptyDir", mount["name"])  # kn names the volume as given after ed:
        mounts[mount["mountPath"]] = (*source, mount.get("readOnly", False))
    annotations = template["metadata"]["annotations"]
    return {
        "namespace": service["metadata"]["namespace"],
        "image": container["image"],
        "pull": container["imagePullPolicy"],
        "command": container["command"],
        "args": container["args"],
        "port": container["ports"][0]["containerPort"],
        "env": env,
        "env_from": sorted(env_from),
        "concurrency": pod["containerConcurrency"],
        "scale": tuple(
            int(annotations[f"autoscaling.knative.dev/{k}"])
            for k in ("min-scale", "max-scale", "target")
        ),
        "readiness": {
            "scheme": "http",
            "host": http.get("host", ""),
            "port": str(http.get("port", "")),
            "path": http["path"],
            **probe,
        },
        "requests": container["resources"]["requests"],
        "limits": container["resources"]["limits"],
        "security": "strict"
        if container["securityContext"] == KN_STRICT
        else container["securityContext"],
        "cluster_local": service["metadata"].get("labels", {}).get(webhooks.VISIBILITY_LABEL)
        == "cluster-local",
        "mounts": mounts,
    }


SINK_PREFIXES = {
    "ksvc": ("serving.knative.dev/v1", "Service"),
    "broker": ("eventing.knative.dev/v1", "Broker"),
}


def sink(text: str) -> tuple[str, str, str]:
    """kn's `ksvc:NAME` / `broker:NAME` as (apiVersion, kind, name)."""
    prefix, name = text.split(":", 1)
    api_version, kind = SINK_PREFIXES[prefix]
    return (api_version, kind, name)


def ref_of(destination: dict[str, Any]) -> tuple[str, str, str]:
    ref = destination["ref"]
    return (ref["apiVersion"], ref["kind"], ref["name"])


def without_namespace(argv: list[str]) -> list[str]:
    return [
        a
        for n, a in enumerate(argv)
        if a != "--namespace" and (n == 0 or argv[n - 1] != "--namespace")
    ]


@pytest.fixture(scope="module")
def fresh_deploy(tmp_path_factory: pytest.TempPathFactory) -> Run:
    result = run_script(tmp_path_factory.mktemp("fresh"), "deploy.sh", env={"FAKE_PRESENT": "0"})
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def redeploy(tmp_path_factory: pytest.TempPathFactory) -> Run:
    result = run_script(tmp_path_factory.mktemp("again"), "deploy.sh", env={"FAKE_PRESENT": "1"})
    assert result.returncode == 0, result.stderr
    return result


def test_deploy_creates_the_services_of_the_yaml(
    fresh_deploy: Run, services: dict[str, dict[str, Any]]
) -> None:
    from_kn = dict(service_from_kn(argv) for argv in fresh_deploy.of("kn", "service", "apply"))
    assert set(from_kn) == set(services)
    for name, service in services.items():
        assert from_kn[name] == service_from_yaml(service), name


def test_the_service_comparison_notices_a_difference(
    fresh_deploy: Run, services: dict[str, dict[str, Any]]
) -> None:
    from_kn = dict(service_from_kn(argv) for argv in fresh_deploy.of("kn", "service", "apply"))
    changed = copy.deepcopy(services["alert"])
    container_of(changed)["env"][2]["value"] = "5"  # THREADS
    assert from_kn["alert"] != service_from_yaml(changed)
    changed = copy.deepcopy(services["stats"])
    changed["metadata"]["labels"] = {webhooks.VISIBILITY_LABEL: "cluster-local"}
    assert from_kn["stats"] != service_from_yaml(changed)


def broker_from_kn(argv: list[str]) -> dict[str, Any]:
    flags = kn_flags(without_namespace(argv[3:]))
    view: dict[str, Any] = {
        "retry": int(flags["--retry"]),
        "backoffPolicy": flags["--backoff-policy"],
        "backoffDelay": flags["--backoff-delay"],
        "deadLetterSink": sink(flags["--dl-sink"]),
    }
    if argv[1] == "create":
        prefix, config, config_namespace = flags["--broker-config"].split(":")
        assert prefix == "cm"
        view["class"] = flags["--class"]
        view["config"] = ("ConfigMap", config, config_namespace)
    return view


def broker_from_yaml(broker: dict[str, Any]) -> dict[str, Any]:
    delivery = broker["spec"]["delivery"]
    config = broker["spec"]["config"]
    return {
        "retry": delivery["retry"],
        "backoffPolicy": delivery["backoffPolicy"],
        "backoffDelay": delivery["backoffDelay"],
        "deadLetterSink": ref_of(delivery["deadLetterSink"]),
        "class": broker["metadata"]["annotations"][contract.BROKER_CLASS_ANNOTATION],
        "config": (config["kind"], config["name"], config["namespace"]),
    }


def triggers_from_kn(calls: list[list[str]]) -> dict[str, dict[str, Any]]:
    result = {}
    for argv in calls:
        flags = kn_flags(without_namespace(argv[3:]))
        result[argv[2]] = {
            "broker": flags["--broker"],
            "attributes": dict(f.split("=", 1) for f in flags["--filter"]),
            "subscriber": sink(flags["--sink"]),
        }
    return result


def triggers_from_yaml(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: {
            "broker": t["spec"]["broker"],
            "attributes": t["spec"]["filter"]["attributes"],
            "subscriber": ref_of(t["spec"]["subscriber"]),
        }
        for name, t in of_kind(docs, "Trigger").items()
    }


def pings_from_kn(run: Run, verb: str) -> dict[str, dict[str, Any]]:
    """The PingSources a deploy created (or updated), with what kubectl patched into them."""
    patched = {
        patch[2]: json.loads(patch[patch.index("-p") + 1])["spec"]
        for patch in run.of("kubectl", "patch")
        if patch[1] == "pingsources.sources.knative.dev"
    }
    result = {}
    for argv in run.of("kn", "source", "ping", verb):
        flags = kn_flags(without_namespace(argv[4:]))
        view = {"schedule": flags["--schedule"], "sink": sink(flags["--sink"])}
        if "--data" in flags:
            view["data"] = json.loads(flags["--data"])
        result[argv[3]] = {**view, **patched.get(argv[3], {})}
    return result


def pings_from_yaml(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    result = {}
    for name, ping in of_kind(docs, "PingSource").items():
        spec = ping["spec"]
        view = {"schedule": spec["schedule"], "sink": ref_of(spec["sink"])}
        if "data" in spec:
            view["data"] = json.loads(spec["data"])
        if "contentType" in spec:
            view["contentType"] = spec["contentType"]
        result[name] = view
    return result


def test_deploy_creates_the_broker_triggers_and_schedule_of_the_yaml(
    fresh_deploy: Run, docs: list[dict[str, Any]]
) -> None:
    (broker_call,) = fresh_deploy.of("kn", "broker", "create")
    assert broker_call[2] == "default"
    assert broker_from_kn(broker_call) == broker_from_yaml(of_kind(docs, "Broker")["default"])
    assert fresh_deploy.of("kn", "broker", "update") == []

    assert triggers_from_kn(fresh_deploy.of("kn", "trigger", "create")) == triggers_from_yaml(docs)

    assert pings_from_kn(fresh_deploy, "create") == pings_from_yaml(docs)
    assert [patch[2] for patch in fresh_deploy.of("kubectl", "patch")] == ["etl-schedule"]
    for argv in fresh_deploy.of("kn"):
        if "describe" not in argv:
            assert argv[argv.index("--namespace") + 1] == NAMESPACE, argv


def test_redeploy_updates_in_place_with_the_same_settings(
    redeploy: Run, fresh_deploy: Run, docs: list[dict[str, Any]]
) -> None:
    assert redeploy.of("kn", "broker", "create") == []
    (update,) = redeploy.of("kn", "broker", "update")
    expected = broker_from_yaml(of_kind(docs, "Broker")["default"])
    del expected["class"], expected["config"]  # immutable: update cannot pass them
    assert broker_from_kn(update) == expected
    assert redeploy.of("kn", "trigger", "create") == []
    assert triggers_from_kn(redeploy.of("kn", "trigger", "update")) == triggers_from_yaml(docs)
    assert pings_from_kn(redeploy, "update") == pings_from_yaml(docs)
    assert redeploy.of("kn", "service", "apply") == fresh_deploy.of("kn", "service", "apply")


def applied(run: Run) -> list[dict[str, Any]]:
    result = []
    for call in run.calls:
        if call["tool"] == "kubectl" and call["argv"][:1] == ["apply"]:
            if "stdin" in call:
                result += [d for d in yaml.safe_load_all(call["stdin"]) if d]
            argv = call["argv"]
            for n, arg in enumerate(argv):
                if arg == "-f" and argv[n + 1] != "-":
                    result += documents_of(Path(argv[n + 1]))
    return result


def documents_of(path: Path) -> list[dict[str, Any]]:
    return [d.body for d in checks.load_documents([path])]


def test_deploy_applies_with_kubectl_only_what_kn_cannot_express(
    fresh_deploy: Run, docs: list[dict[str, Any]]
) -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in applied(fresh_deploy)}
    assert kinds == {
        ("Namespace", NAMESPACE),
        ("Secret", "modelstats-db"),
        ("Service", "postgres"),
        ("StatefulSet", "postgres"),
        ("ConfigMap", "alert-rules"),
        ("ConfigMap", "monitors"),
        ("Job", "modelstats-migrate"),
        ("NetworkPolicy", "functions-from-knative"),
    }
    knative = [d for d in applied(fresh_deploy) if d["apiVersion"].endswith("knative.dev/v1")]
    assert knative == []
    config_maps = {
        d["metadata"]["name"]: d for d in applied(fresh_deploy) if d["kind"] == "ConfigMap"
    }
    assert config_maps["alert-rules"]["data"] == {"alert-rules.yaml": RULES.read_text()}
    assert config_maps == of_kind(render(MANIFESTS), "ConfigMap")
    # The Job is the file's, with the image of this deploy.
    (job,) = [d for d in applied(fresh_deploy) if d["kind"] == "Job"]
    shipped = of_kind(docs, "Job")["modelstats-migrate"]
    assert job == shipped
    (policy,) = [d for d in applied(fresh_deploy) if d["kind"] == "NetworkPolicy"]
    assert policy == of_kind(docs, "NetworkPolicy")["functions-from-knative"]


def test_deploy_order_database_then_functions_then_routing(fresh_deploy: Run) -> None:
    migrated = fresh_deploy.index(
        "kubectl", "wait", "--for=condition=complete", "job/modelstats-migrate"
    )
    assert fresh_deploy.index("kubectl", "rollout", "status", "statefulset/postgres") < migrated
    assert fresh_deploy.index("kubectl", "delete", "job", "modelstats-migrate") < migrated
    services = [
        i
        for i, c in enumerate(fresh_deploy.calls)
        if c["tool"] == "kn" and c["argv"][:2] == ["service", "apply"]
    ]
    assert migrated < min(services)
    assert fresh_deploy.calls[services[0]]["argv"][2] == "deadletters"  # the dead-letter sink first
    # The functions' pods start isolated: the NetworkPolicy exists before any of them.
    (policy,) = [
        i
        for i, c in enumerate(fresh_deploy.calls)
        if c["tool"] == "kubectl" and any(a.endswith("/networkpolicy.yaml") for a in c["argv"])
    ]
    assert fresh_deploy.index("kubectl", "apply", "-f") < policy < min(services)
    broker = fresh_deploy.index("kn", "broker", "create")
    assert max(services) < broker < fresh_deploy.index("kn", "trigger", "create")
    assert fresh_deploy.index("kn", "source", "ping", "create") < fresh_deploy.index(
        "kubectl", "patch"
    )


@pytest.mark.slow
def test_image_tag_reaches_every_image(tmp_path: Path) -> None:
    result = run_script(tmp_path, "deploy.sh", env={"FAKE_PRESENT": "0", "IMAGE_TAG": "v2"})
    assert result.returncode == 0, result.stderr
    images = [
        kn_flags(without_namespace(a[3:]))["--image"] for a in result.of("kn", "service", "apply")
    ]
    assert images and all(
        i.startswith("dev.local/modelstats-") and i.endswith(":v2") for i in images
    )
    (job,) = [d for d in applied(result) if d["kind"] == "Job"]
    assert (
        job["spec"]["template"]["spec"]["containers"][0]["image"]
        == "dev.local/modelstats-ingest:v2"
    )


@pytest.mark.slow
def test_optional_secrets(tmp_path: Path) -> None:
    # Absent and nothing given: created empty, so the Services' references resolve.
    absent = run_script(tmp_path, "deploy.sh", env={"FAKE_PRESENT": "0"})
    assert absent.returncode == 0, absent.stderr
    created = [a for a in absent.of("kubectl", "create", "secret") if "--dry-run=client" not in a]
    assert sorted(a[3] for a in created) == ["modelstats-notify", "modelstats-stats-api"]
    # Present and nothing given: left alone (keys from an earlier deploy survive).
    kept = run_script(tmp_path, "deploy.sh", env={"FAKE_PRESENT": "1"})
    assert kept.of("kubectl", "create", "secret") == []
    # Given: applied with exactly the variables found.
    given = run_script(
        tmp_path,
        "deploy.sh",
        env={"FAKE_PRESENT": "1", "SLACK_WEBHOOK_URL": "https://hooks.example/x"},
    )
    notify = [d for d in applied(given) if d["metadata"]["name"] == "modelstats-notify"]
    assert notify == [
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "modelstats-notify", "namespace": NAMESPACE},
            "stringData": {"SLACK_WEBHOOK_URL": "https://hooks.example/x"},
        }
    ]


@pytest.mark.slow
def test_deploy_stops_without_knative(tmp_path: Path) -> None:
    result = run_script(tmp_path, "deploy.sh", env={"FAKE_NO_KNATIVE": "1"})
    assert result.returncode != 0
    assert "make minikube" in result.stderr
    assert result.of("kn", "service") == [] and result.of("kubectl", "apply") == []


@pytest.mark.slow
def test_undeploy_removes_every_object_deploy_creates(
    tmp_path: Path, docs: list[dict[str, Any]]
) -> None:
    result = run_script(tmp_path, "undeploy.sh", env={"FAKE_PRESENT": "1"})
    assert result.returncode == 0, result.stderr
    # (kn noun, name) of every delete.
    deleted = {
        (" ".join(a[: a.index("delete")]), a[a.index("delete") + 1])
        for a in result.of("kn")
        if "delete" in a
    }
    expected = {
        ("service", n)
        for n, d in of_kind(docs, "Service").items()
        if d["apiVersion"].startswith("serving.")
    }
    expected |= {("trigger", n) for n in of_kind(docs, "Trigger")}
    expected |= {("broker", n) for n in of_kind(docs, "Broker")}
    expected |= {("source ping", n) for n in of_kind(docs, "PingSource")}
    # And the demo's objects, should infra/overlays/demo/demo.yaml have been applied.
    demo = documents_of(DEMO / "demo.yaml")
    expected |= {("trigger", n) for n in of_kind(demo, "Trigger")}
    expected |= {("source ping", n) for n in of_kind(demo, "PingSource")}
    assert deleted == expected
    (core,) = result.of("kubectl", "delete", "--namespace")
    assert {
        "statefulset/postgres",
        "service/postgres",
        "secret/modelstats-db",
        "job/modelstats-migrate",
        "networkpolicy/functions-from-knative",
    } <= set(core)
    assert result.of("kubectl", "delete", "namespace") == []  # the data is kept by default

    purge = run_script(tmp_path, "undeploy.sh", "--purge", env={"FAKE_PRESENT": "0"})
    assert purge.returncode == 0 and purge.of("kn", "service", "delete") == []
    assert purge.of("kubectl", "delete", "namespace") == [
        ["delete", "namespace", NAMESPACE, "--ignore-not-found"]
    ]
    assert run_script(tmp_path, "undeploy.sh", "--everything").returncode == 2


@pytest.mark.slow
def test_minikube_script_uses_quickstart_with_the_validated_kubernetes(tmp_path: Path) -> None:
    result = run_script(tmp_path, "minikube.sh")
    assert result.returncode == 0, result.stderr
    (quickstart,) = result.of("kn", "quickstart", "minikube")
    version = quickstart[quickstart.index("--kubernetes-version") + 1]
    assert version.lstrip("v").rsplit(".", 1)[0] == schemas.KUBERNETES_VERSION
    assert quickstart[quickstart.index("--name") + 1] == "knative"
    running = run_script(tmp_path, "minikube.sh", env={"FAKE_MINIKUBE_RUNNING": "1"})
    assert running.returncode == 0 and running.of("kn", "quickstart", "minikube") == []


def make_dry_run(*targets: str) -> str:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", *targets],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@pytest.mark.slow
def test_make_images_builds_the_images_the_manifests_run(
    services: dict[str, dict[str, Any]],
) -> None:
    script = make_dry_run("images")
    assert "minikube --profile knative docker-env" in script
    loop = re.search(r"for function in ([a-z ]+); do", script)
    assert loop is not None
    built = {f"dev.local/modelstats-{f}:latest" for f in loop.group(1).split()}
    assert "docker build -f infra/Dockerfile --build-arg FUNCTION=$function" in script
    assert "-t dev.local/modelstats-$function:latest" in script
    assert built == {container_of(s)["image"] for s in services.values()}


@pytest.mark.slow
def test_make_deploy_targets_run_the_scripts() -> None:
    assert make_dry_run("deploy").strip() == "IMAGE_TAG=latest infra/deploy.sh"
    assert make_dry_run("undeploy").strip() == "infra/undeploy.sh"
    assert make_dry_run("minikube").strip() == "MINIKUBE_PROFILE=knative infra/minikube.sh"


# --- the production overlay, rendered by a tiny kustomize -----------------------------------------

CLUSTER_SCOPED = {"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: what kustomize does with a strategic-merge patch on a kind it
    has no schema for (every kind patched here is a CRD, a Secret, or deleted outright)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def split_image(image: str) -> tuple[str, str]:
    name, colon, tag = image.rpartition(":")
    return (name, tag) if colon and "/" not in tag else (image, "")


def containers_in(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                yield from (c for c in value if isinstance(c, dict))
            else:
                yield from containers_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from containers_in(item)


def generated_config_map(directory: Path, generator: dict[str, Any]) -> dict[str, Any]:
    """A configMapGenerator entry with `files` (key: the file's name) and no hash suffix: the
    only form the base uses (a hashed name would not be rewritten in a Knative Service)."""
    if set(generator) - {"name", "files", "options"} or generator.get("options") != {
        "disableNameSuffixHash": True
    }:
        raise ValueError(f"unsupported configMapGenerator entry {generator}")
    data = {}
    for file in generator["files"]:
        if "=" in file:
            raise ValueError(f"unsupported configMapGenerator file {file}")
        data[Path(file).name] = (directory / file).read_text()
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": generator["name"]},
        "data": data,
    }


def render(directory: Path) -> list[dict[str, Any]]:
    """The subset of kustomize the overlays use; anything else is an error, never ignored."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - {
        "apiVersion",
        "kind",
        "namespace",
        "resources",
        "configMapGenerator",
        "patches",
        "images",
    }
    if unsupported:
        raise ValueError(f"unsupported kustomization fields {sorted(unsupported)}")
    objects: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        objects += render(path) if path.is_dir() else documents_of(path)
    for generator in kustomization.get("configMapGenerator", []):
        objects.append(generated_config_map(directory, generator))
    if "namespace" in kustomization:
        for obj in objects:
            if obj["kind"] not in CLUSTER_SCOPED:
                obj["metadata"]["namespace"] = kustomization["namespace"]
    for entry in kustomization.get("patches", []):
        if set(entry) != {"path"}:
            raise ValueError(f"unsupported patch entry {entry}")
        for patch in documents_of(directory / entry["path"]):
            key = (patch["kind"], patch["metadata"]["name"], patch["metadata"].get("namespace"))
            matches = [
                o
                for o in objects
                if (o["kind"], o["metadata"]["name"], o["metadata"].get("namespace")) == key
            ]
            if len(matches) != 1:
                raise ValueError(f"patch {entry['path']} matches {len(matches)} objects")
            (target,) = matches
            if patch.get("$patch") == "delete":
                objects.remove(target)
            else:
                objects[objects.index(target)] = merge_patch(target, patch)
    for image in kustomization.get("images", []):
        for obj in objects:
            for container in containers_in(obj):
                name, tag = split_image(container["image"])
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    return objects


def object_key(d: dict[str, Any]) -> tuple[str, str, str, str]:
    return (d["apiVersion"], d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])


def test_the_base_renders_to_the_manifest_files_and_the_rules(docs: list[dict[str, Any]]) -> None:
    rules = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "alert-rules", "namespace": NAMESPACE},
        "data": {"alert-rules.yaml": RULES.read_text()},
    }
    watched = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "monitors", "namespace": NAMESPACE},
        "data": {"monitors.yaml": MONITORS.read_text()},
    }
    objects = [d for d in docs if d["kind"] != "Kustomization"]
    expected = sorted([*objects, rules, watched], key=object_key)
    assert sorted(render(MANIFESTS), key=object_key) == expected


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl: kustomize not compared")
@pytest.mark.parametrize("directory", ["knative", "overlays/production", "overlays/demo"])
def test_kubectl_kustomize_renders_what_these_tests_render(directory: str) -> None:
    """The renderer above against the real kustomize (offline: `kubectl kustomize` needs no
    cluster), so the checks made on its output hold for `kubectl apply -k`."""
    done = subprocess.run(
        ["kubectl", "kustomize", str(INFRA / directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rendered = [d for d in yaml.safe_load_all(done.stdout) if d]
    expected = render(INFRA / directory)
    assert sorted(rendered, key=object_key) == sorted(expected, key=object_key)


def test_the_renderer_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("resources: []\nsecretGenerator: []\n")
    with pytest.raises(ValueError, match="secretGenerator"):
        render(tmp_path)
    (tmp_path / "rules.yaml").write_text("rules: []\n")
    (tmp_path / "kustomization.yaml").write_text(
        "configMapGenerator: [{name: rules, files: [rules.yaml]}]\n"
    )
    with pytest.raises(ValueError, match="unsupported configMapGenerator entry"):
        render(tmp_path)  # a hashed name: not what the base may use
    (tmp_path / "kustomization.yaml").write_text(
        f"resources: [{MANIFESTS}]\npatches: [{{path: p.yaml}}]\n"
    )
    (tmp_path / "p.yaml").write_text(
        "kind: Broker\nmetadata: {name: other, namespace: modelstats}\n"
    )
    with pytest.raises(ValueError, match="matches 0 objects"):
        render(tmp_path)


@pytest.fixture(scope="module")
def production() -> list[dict[str, Any]]:
    return render(INFRA / "overlays" / "production")


def test_production_uses_the_kafka_broker(production: list[dict[str, Any]]) -> None:
    (broker,) = of_kind(production, "Broker").values()
    assert broker["metadata"]["annotations"][contract.BROKER_CLASS_ANNOTATION] == "Kafka"
    config = broker["spec"]["config"]
    config_maps = {
        (d["metadata"]["namespace"], d["metadata"]["name"]): d
        for d in production
        if d["kind"] == "ConfigMap"
    }
    kafka = config_maps[(config["namespace"], config["name"])]
    assert kafka["metadata"]["namespace"] == "knative-eventing"
    assert {
        "bootstrap.servers",
        "default.topic.partitions",
        "default.topic.replication.factor",
    } <= set(kafka["data"])
    # Same delivery and dead-letter sink as the base.
    assert (
        broker["spec"]["delivery"] == of_kind(documents(), "Broker")["default"]["spec"]["delivery"]
    )


def test_production_uses_an_external_database(production: list[dict[str, Any]]) -> None:
    assert "StatefulSet" not in {d["kind"] for d in production}
    assert "postgres" not in {
        d["metadata"]["name"]
        for d in production
        if d["kind"] == "Service" and d["apiVersion"] == "v1"
    }
    secret = of_kind(production, "Secret")["modelstats-db"]["stringData"]
    assert set(secret) == {"DATABASE_URL"}
    host = urlsplit(secret["DATABASE_URL"]).hostname or ""
    assert host and not host.endswith(".svc.cluster.local")


def test_production_images_come_from_a_registry(production: list[dict[str, Any]]) -> None:
    images = [c["image"] for d in production for c in containers_in(d)]
    assert len(images) == 6  # five Services and the migration Job
    assert all(i.startswith("registry.example.com/") and not i.endswith(":latest") for i in images)


def test_production_passes_the_offline_checks(production: list[dict[str, Any]]) -> None:
    rendered = [checks.Document("production", n, d) for n, d in enumerate(production)]
    assert [str(p) for p in checks.check_documents(rendered, CRDS)] == []


# --- the demo overlay --------------------------------------------------------------------------


def synthetic_jobs(docs: list[dict[str, Any]]) -> set[str]:
    """The PingSources whose job is etl's synthetic one (random figures)."""
    return {
        name
        for name, ping in of_kind(docs, "PingSource").items()
        if json.loads(ping["spec"].get("data") or "{}").get("source") == "synthetic"
    }


@pytest.fixture(scope="module")
def demo() -> list[dict[str, Any]]:
    return render(DEMO)


def test_the_demo_overlay_is_the_base_plus_the_demo_schedules_and_their_triggers(
    demo: list[dict[str, Any]],
) -> None:
    base = render(MANIFESTS)
    added = [d for d in demo if d not in base]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in added) == [
        ("PingSource", "demo-labels"),
        ("PingSource", "demo-schedule"),
        ("PingSource", "demo-traffic"),
        ("Trigger", "etl-demo-labels"),
        ("Trigger", "etl-demo-ping"),
        ("Trigger", "etl-demo-traffic"),
    ]
    pings = of_kind(demo, "PingSource")
    assert json.loads(pings["demo-traffic"]["spec"]["data"]) == {
        "source": "demo",
        "part": "traffic",
    }
    assert json.loads(pings["demo-labels"]["spec"]["data"]) == {"source": "demo", "part": "labels"}
    assert all(d in demo for d in base)
    ping = of_kind(demo, "PingSource")["demo-schedule"]
    assert json.loads(ping["spec"]["data"]) == {
        "source": "synthetic",
        "models": ["GPT", "Llama", "Mistral"],
        "versions": ["v1"],
        "labels": {"demo": "synthetic"},
    }
    source = contract.ping_source(NAMESPACE, "demo-schedule")
    (route,) = [r for r in routes(demo) if r.attributes.get("source") == source]
    assert (route.trigger, route.subscriber) == ("etl-demo-ping", "etl")
    assert loop_problems(routes(demo)) == []


def test_the_demo_overlay_passes_the_offline_checks(demo: list[dict[str, Any]]) -> None:
    rendered = [checks.Document("demo", n, d) for n, d in enumerate(demo)]
    assert [str(p) for p in checks.check_documents(rendered, CRDS)] == []


def test_production_and_the_base_carry_no_synthetic_job(
    production: list[dict[str, Any]],
) -> None:
    assert "demo-schedule" not in of_kind(production, "PingSource")
    assert synthetic_jobs(production) == synthetic_jobs(render(MANIFESTS)) == set()
