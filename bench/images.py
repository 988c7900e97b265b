"""Images: each function's image size, and its cold start: from `podman run` until /healthz first
answers 200 (which needs PostgreSQL reachable: the readiness Knative waits on).

The images are those of `make image-test` (infra/images.py: podman as root, base from Debian's
packages), built first if missing or stale (cached layers make that a few seconds). A cold start
here is container creation, Python importing the function, gunicorn forking its worker and the
first pooled connection; on a cluster, scheduling, the image pull and the queue-proxy come on
top. Where podman cannot run (not root, no Debian packages) the row says so and nothing fails.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from infra import images
from modelstats.store import migrate

from .common import Context, Row


def _cold_start(podman: images.Podman, function: str, database_url: str) -> float:
    """Milliseconds from `podman run` to the first 200 of /healthz; the container is removed."""
    port = images.free_port()
    name = f"modelstats-bench-{function}-{uuid.uuid4().hex[:8]}"
    options = images.run_options(port, database_url, service=name)
    started = time.monotonic()
    try:
        podman("run", "--detach", "--name", name, *options, images.image_name(function))
        images.wait_for_200(f"http://127.0.0.1:{port}/healthz", timeout=90)
        return (time.monotonic() - started) * 1000
    finally:
        podman("rm", "--force", "--time", "0", name, check=False)


def run(ctx: Context) -> list[Row]:
    podman = images.Podman(images.default_cache_dir().resolve())
    try:
        images.preflight(podman)
    except images.Unavailable as error:
        reason = str(error).splitlines()[0]
        return [Row("images", "skipped", 0, "", f"podman cannot run here: {reason}")]
    print("building the images (cached) ...", file=sys.stderr, flush=True)
    images.build(podman, quiet=True)
    runs = 3 if ctx.quick else 7
    home = Path(tempfile.mkdtemp(prefix="modelstats-bench-images-"))
    server = images.TcpPostgres(home / "pg")
    rows: list[Row] = []
    try:
        database_url = server.start()
        migrate.migrate(database_url)
        for function in images.FUNCTIONS:
            size = podman.image_size(images.image_name(function)) / 1e6
            starts = [_cold_start(podman, function, database_url) for _ in range(runs)]
            case = f"image {function}"
            rows.append(Row(case, "size", size, "MB", "all but the last layers shared"))
            rows.append(
                Row(
                    case,
                    "cold start p50",
                    statistics.median(starts),
                    "ms",
                    f"podman run -> first /healthz 200; {runs} runs, max {max(starts):,.0f} ms",
                )
            )
    finally:
        server.remove()
        shutil.rmtree(home, ignore_errors=True)
    return rows
