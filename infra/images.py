"""Build the four function images from infra/Dockerfile and run them, with no registry.

`make image-test` runs `python infra/images.py build`, then the smoke tests in tests/images/;
bench/images.py measures the same images. What it relies on (infra/README.md, "The images"
says the same):

- podman as root, with runc and cgroupfs (crun fails on this kind of machine: cgroups in hybrid
  mode) and explicit rlimits (podman's defaults need CAP_SYS_RESOURCE), from its own
  containers.conf and storage under a cache directory, so nothing of the host's podman is
  touched. Builds and containers use the host network: no bridge or firewall rule is made,
  and a container reaches a PostgreSQL on 127.0.0.1.
- the base from Debian's packages: `debootstrap --variant=minbase bookworm` from the mirror apt
  uses, imported as an image, plus Debian's python3 (3.11) and python3-venv. Cached: only
  `--no-cache` or a missing image rebuilds it.
- pip inside the build sees the host's CA bundle (outbound HTTPS may be intercepted here).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FUNCTIONS = ("ingest", "stats", "alert", "etl")
SUITE = "bookworm"  # Debian 12: Python 3.11, the version of the official base image
DEBIAN_IMAGE = f"localhost/modelstats-base/debian:{SUITE}"
PYTHON_IMAGE = "localhost/modelstats-base/python:3.11"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TOOLS = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}  # command: package
BASE_CONTAINERFILE = f"""FROM {DEBIAN_IMAGE}
RUN apt-get update \\
 && apt-get install -y --no-install-recommends python3 python3-venv python-is-python3 \\
 && rm -rf /var/lib/apt/lists/*
"""


def image_name(function: str) -> str:
    """The name the Knative manifests run (infra/knative/services.yaml)."""
    return f"dev.local/modelstats-{function}:latest"


def default_cache_dir() -> Path:
    configured = os.environ.get("MODELSTATS_IMAGES_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "modelstats-images"


class Unavailable(RuntimeError):
    """podman cannot run on this machine; the message says why and what would fix it."""


@dataclass(frozen=True)
class Podman:
    """podman with this project's configuration and storage, all under `cache`."""

    cache: Path

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONTAINERS_CONF": str(self.cache / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(self.cache / "storage.conf"),
        }

    def configure(self) -> None:
        self.cache.mkdir(parents=True, exist_ok=True)
        # podman keeps these paths in its database: they must stay the same between runs.
        (self.cache / "containers.conf").write_text(
            "[containers]\n"
            'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
            "[engine]\n"
            'runtime = "runc"\n'
            'cgroup_manager = "cgroupfs"\n'
            'events_logger = "file"\n'
            f'events_logfile_path = "{self.cache / "events.log"}"\n'
            f'tmp_dir = "{self.cache / "tmp"}"\n'
            "[network]\n"
            f'network_config_dir = "{self.cache / "networks"}"\n'
        )
        (self.cache / "storage.conf").write_text(
            "[storage]\n"
            'driver = "overlay"\n'
            f'graphroot = "{self.cache / "storage"}"\n'
            f'runroot = "{self.cache / "run"}"\n'
        )

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 600, input: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        done = subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, timeout=timeout, input=input
        )
        if check and done.returncode != 0:
            raise RuntimeError(
                f"podman {' '.join(args[:3])} ... failed ({done.returncode}):\n"
                + done.stderr.decode(errors="replace")[-3000:]
            )
        return done

    def text(self, *args: str) -> str:
        return self(*args).stdout.decode().strip()

    def image_exists(self, name: str) -> bool:
        return self("image", "exists", name, check=False).returncode == 0

    def image_size(self, name: str) -> int:
        return int(self.text("image", "inspect", "--format", "{{.Size}}", name))

    def build(self, *args: str, host_ca: bool = False, quiet: bool = False) -> None:
        """`podman build` on the host network, never pulling; its output shown as it goes
        (`quiet`: only when it fails). `host_ca`: the build's steps see the host's CA bundle
        (not while installing Debian's ca-certificates package, which writes that file)."""
        command = ["podman", "build", "--pull=never", "--network=host", *args]
        if host_ca and HOST_CA_BUNDLE.is_file():
            command[2:2] = ["--volume", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]
        done = subprocess.run(command, env=self.env, capture_output=quiet)
        if done.returncode != 0:
            output = (done.stdout or b"")[-3000:] + (done.stderr or b"")[-3000:]
            raise RuntimeError(
                f"podman build failed: {' '.join(command[2:])}\n{output.decode(errors='replace')}"
            )


def ensure_tools() -> None:
    """podman, runc and debootstrap, installed from Debian's packages when missing (as root)."""
    if os.geteuid() != 0:
        raise Unavailable("the images need root (podman with runc, debootstrap); run as root")
    missing = [package for command, package in TOOLS.items() if not shutil.which(command)]
    if not missing:
        return
    if not shutil.which("apt-get"):
        raise Unavailable(f"{', '.join(missing)} not installed, and no apt-get to install them")
    print(f"installing {' '.join(missing)} from Debian's packages ...", file=sys.stderr)
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    if subprocess.run(install, capture_output=True).returncode != 0:
        # A fresh machine's package lists may be empty or stale: refresh and try once more.
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True)
        done = subprocess.run(install, capture_output=True, text=True)
        if done.returncode != 0:
            raise Unavailable(f"apt-get could not install {' '.join(missing)}:\n{done.stderr}")


def preflight(podman: Podman) -> None:
    """Tools present and podman working with this configuration, else Unavailable."""
    ensure_tools()
    podman.configure()
    done = podman("info", check=False, timeout=120)
    if done.returncode != 0:
        raise Unavailable("podman does not run here:\n" + done.stderr.decode(errors="replace"))


def debian_mirror() -> str:
    """The Debian archive apt is configured with (MODELSTATS_DEBIAN_MIRROR wins)."""
    configured = os.environ.get("MODELSTATS_DEBIAN_MIRROR")
    if configured:
        return configured
    sources = Path("/etc/apt/sources.list.d")
    texts = [p.read_text() for p in sorted(sources.glob("*.sources"))] if sources.is_dir() else []
    for text in texts:  # deb822 stanzas: URIs / Suites
        for stanza in text.split("\n\n"):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and not suites.group(1).split()[0].endswith("-security"):
                return uris.group(1)
    legacy = Path("/etc/apt/sources.list")
    if legacy.is_file():
        for line in legacy.read_text().splitlines():
            match = re.match(r"deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line)
            if match and not match.group(2).endswith("-security"):
                return match.group(1)
    return "http://deb.debian.org/debian"


def build_base(podman: Podman, quiet: bool = False) -> None:
    """localhost/modelstats-base/python:3.11 from debootstrap, unless already there."""
    if podman.image_exists(PYTHON_IMAGE):
        return
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(dir=podman.cache, prefix="base-") as work:
        rootfs = Path(work) / "rootfs"
        print(f"debootstrap {SUITE} from {mirror} (about 40 s) ...", file=sys.stderr, flush=True)
        done = subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(rootfs), mirror],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"debootstrap failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        # The downloaded packages and lists: no use in an image (apt-get update comes first).
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_file():
                    entry.unlink()
        tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True)
        podman("import", "-", DEBIAN_IMAGE, input=tar.stdout)
        context = Path(work) / "context"
        context.mkdir()
        (context / "Containerfile").write_text(BASE_CONTAINERFILE)
        podman.build("-t", PYTHON_IMAGE, str(context), quiet=quiet)


def build(
    podman: Podman,
    functions: tuple[str, ...] = FUNCTIONS,
    no_cache: bool = False,
    quiet: bool = False,
) -> None:
    """The base (cached) and one image per function from infra/Dockerfile."""
    if no_cache:
        # Everything in this project's storage (the host's podman has its own): the base and
        # every layer are then made afresh, and the four images still share theirs.
        podman("rm", "--all", "--force", timeout=300)
        podman("rmi", "--all", "--force", timeout=300)
    build_base(podman, quiet)
    for function in functions:
        started = time.monotonic()
        podman.build(
            "--file",
            str(ROOT / "infra" / "Dockerfile"),
            "--build-arg",
            f"BASE_IMAGE={PYTHON_IMAGE}",
            "--build-arg",
            f"FUNCTION={function}",
            "--tag",
            image_name(function),
            str(ROOT),
            host_ca=True,
            quiet=quiet,
        )
        size = podman.image_size(image_name(function)) / 1e6
        took = time.monotonic() - started
        print(f"built {image_name(function)}: {size:.0f} MB in {took:.1f} s", file=sys.stderr)
    # The images these builds replaced, untagged now: without this the cache only grows.
    podman("image", "prune", "--force", timeout=300)


# --- running the images -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_options(port: int, database_url: str, service: str) -> list[str]:
    """`podman run` options for a function as the cluster runs it: non-root (the image's USER),
    no capabilities, no privilege escalation, a read-only root with a tmpfs at /tmp (the only
    place the image writes), on 127.0.0.1 only. `service` is K_SERVICE, which names the
    function's PostgreSQL connections (application_name)."""
    return [
        "--network=host",
        "--read-only",
        "--read-only-tmpfs=false",
        "--tmpfs=/tmp:rw,mode=1777,size=64m",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        f"--env=PORT={port}",
        "--env=HOST=127.0.0.1",
        f"--env=DATABASE_URL={database_url}",
        f"--env=K_SERVICE={service}",
        "--env=WORKERS=1",
        "--env=THREADS=2",
        "--env=DB_POOL_SIZE=2",
    ]


def wait_for_200(url: str, timeout: float = 60) -> float:
    """Seconds until `url` first answers 200; TimeoutError after `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{url} did not answer 200 within {timeout:.0f} s")


class TcpPostgres:
    """A throwaway PostgreSQL on 127.0.0.1 (containers on the host network reach it there),
    from the pgserver wheel's binaries, run as its unprivileged user when we are root."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir.resolve()
        self.port = free_port()
        self._user: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        from pgserver import _commands

        pg_ctl = getattr(_commands, "pg_ctl")  # noqa: B009 (generated at import time)
        pg_ctl(list(args), pgdata=self.data_dir, user=self._user, timeout=60)

    def start(self) -> str:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            import pgserver

            # pgserver initialises the cluster (as its own user when root) and starts it on a
            # Unix socket; restart it listening on TCP instead. initdb trusts local clients.
            server = pgserver.get_server(self.data_dir, cleanup_mode=None)
        self._user = server.system_user
        self._pg_ctl("-w", "-m", "fast", "stop")
        options = f"-h 127.0.0.1 -p {self.port} -k {self.data_dir}"
        self._pg_ctl("-w", "-o", options, "-l", str(self.data_dir / "log"), "start")
        return self.url

    def remove(self) -> None:
        with contextlib.suppress(Exception):  # not running: nothing to stop
            self._pg_ctl("-w", "-m", "immediate", "stop")
        shutil.rmtree(self.data_dir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python infra/images.py", description=__doc__)
    parser.add_argument(
        "command",
        choices=["build", "check"],
        help="build the images, or only say whether podman can run here (exit 0) or why not",
    )
    parser.add_argument("functions", nargs="*", help=f"some of {', '.join(FUNCTIONS)} (all)")
    parser.add_argument("--no-cache", action="store_true", help="rebuild the base and layers")
    parser.add_argument("--cache-dir", type=Path, default=default_cache_dir())
    args = parser.parse_args(argv)
    unknown = sorted(set(args.functions) - set(FUNCTIONS))
    if unknown:
        parser.error(f"unknown functions {unknown}: choose from {', '.join(FUNCTIONS)}")
    podman = Podman(args.cache_dir.resolve())
    try:
        preflight(podman)
    except Unavailable as error:
        print(f"images: {error}", file=sys.stderr)
        return 1
    if args.command == "build":
        build(podman, tuple(args.functions) or FUNCTIONS, no_cache=args.no_cache)
    else:
        print(f"podman runs here (storage in {podman.cache})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
