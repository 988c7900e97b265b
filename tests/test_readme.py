"""The documentation, run as written: the marked shell and Python blocks of the README and of
docs/, bench/README.md and infra/README.md against a started stack, and every relative link.

The convention (README, "Development"): every `sh` or `python` block is preceded by
`<!-- readme-test: run -->` or `<!-- readme-test: skip <why> -->`. Run blocks execute in
order, the README's first and then each other document's in the order of `DOCUMENTS`, in bash
(or Python), from a directory outside the checkout whose `.venv` is the checkout's but without
the venv on PATH (as a reader's shell), with the stack's ports in place of 8080 and 8081 and
`MODELSTATS_DATA_DIR` pointing at it; `curl` fails on HTTP errors. A block may rely on
what the README's blocks sent (the model `fraud-detector`, version `v3`), nothing more.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.model_servers import example_server
from tests.stacks import Stack, poll, running_stack

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
# The README first: the other documents' examples read the event it sends.
DOCUMENTS = [
    README,
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "bench" / "README.md",
    ROOT / "infra" / "README.md",
]
# Documents whose links are checked but whose blocks are not run.
LINKED_ONLY = [ROOT / "infra" / "knative" / "README.md"]
CHECKED_LANGUAGES = {"sh", "bash", "shell", "console", "python"}
MARKER = re.compile(r"^<!--\s*readme-test:\s*(run|skip)\b(.*?)-->$")
FENCE = re.compile(r"^\s*```(\w*)\s*$")  # indented too: a block inside a list item
# Every curl fails on an HTTP status >= 400 (and says which), so a block checks its answers.
PRELUDE = """set -e -o pipefail
curl() { command curl --silent --show-error --fail-with-body "$@"; }
"""
BLOCK_TIMEOUT = 60
# A block that reads what an earlier one sent may run before the broker delivered it.
SETTLE_SECONDS = 30


@dataclass(frozen=True)
class Block:
    line: int
    language: str
    text: str
    action: str  # "run", "skip", or "" (unmarked)
    reason: str
    document: str = ""  # relative to the checkout

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"


def readme_blocks(text: str, document: str = "") -> list[Block]:
    lines = text.splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        start = index
        index += 1
        while index < len(lines) and lines[index].strip() != "```":
            index += 1
        before = start - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        marker = MARKER.match(lines[before].strip()) if before >= 0 else None
        found.append(
            Block(
                line=start + 1,
                language=opening[1],
                text=textwrap.dedent("\n".join(lines[start + 1 : index])),
                action=marker[1] if marker else "",
                reason=marker[2].strip() if marker else "",
                document=document,
            )
        )
        index += 1
    return found


def checked_blocks() -> list[Block]:
    return [
        block
        for path in DOCUMENTS
        for block in readme_blocks(path.read_text("utf-8"), str(path.relative_to(ROOT)))
        if block.language in CHECKED_LANGUAGES
    ]


def test_every_shell_and_python_block_is_marked_run_or_skip_with_a_reason() -> None:
    blocks = checked_blocks()
    unmarked = [b.where for b in blocks if not b.action]
    assert unmarked == [], f"blocks without a readme-test marker at {unmarked}"
    no_reason = [b.where for b in blocks if b.action == "skip" and not b.reason]
    assert no_reason == [], f"skipped blocks without a reason at {no_reason}"
    assert len([b for b in blocks if b.action == "run"]) >= 6
    documents = {b.document for b in blocks}
    assert {"README.md", "docs/stats-api.md", "docs/local-stack.md"} <= documents


def test_the_parser_finds_markers_and_unmarked_blocks() -> None:
    text = (
        "<!-- readme-test: run -->\n```sh\necho 1\n```\n\n"
        "<!-- readme-test: skip a cluster -->\n\n```python\nprint(2)\n```\n"
        "text\n```sh\necho 3\n```\n```json\n{}\n```\n"
        "- item\n\n  <!-- readme-test: run -->\n  ```sh\n  echo 4\n    echo 5\n  ```\n"
    )
    blocks = readme_blocks(text)
    assert [(b.language, b.action, b.reason, b.text) for b in blocks] == [
        ("sh", "run", "", "echo 1"),
        ("python", "skip", "a cluster", "print(2)"),
        ("sh", "", "", "echo 3"),
        ("json", "", "", "{}"),
        ("sh", "run", "", "echo 4\n  echo 5"),
    ]


# -- links -------------------------------------------------------------------------------

LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"`[^`]*`")


def prose(text: str) -> list[str]:
    """The lines outside fenced blocks (a `](#x)` in a block is no link, nor a `# comment` a
    heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def anchor(heading: str) -> str:
    """The id GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose(text):
        heading = HEADING.match(line)
        if not heading:
            continue
        slug = anchor(heading[2])
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(text: str) -> list[str]:
    # Joined, because a link's text may run over a line break.
    joined = "\n".join(CODE_SPAN.sub("", line) for line in prose(text))
    return [
        target
        for target in LINK.findall(joined)
        if not re.match(r"^[a-z][a-z0-9+.-]*:", target)  # http:, https:, mailto:
    ]


def broken_links(document: Path) -> list[str]:
    broken = []
    for target in links(document.read_text("utf-8")):
        path, _, fragment = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md" and fragment not in anchors(linked.read_text()):
            broken.append(f"{target}: no such heading")
    return broken


def test_the_link_checker_knows_anchors_and_files(tmp_path: Path) -> None:
    assert anchor("Who can reach what") == "who-can-reach-what"
    assert anchor("Faithful to Knative, and where it differs") == (
        "faithful-to-knative-and-where-it-differs"
    )
    assert anchor("Operations: the store, `metrics`") == "operations-the-store-metrics"
    (tmp_path / "other.md").write_text("# Other\n\n## Part two\n\n## Part two\n")
    document = tmp_path / "doc.md"
    document.write_text(
        "# Doc\n\n## Here\n\n[a](other.md#part-two) [b](other.md#part-two-1) [c](#here)\n"
        "[d](other.md#nowhere) [e](missing.md) [f](#gone) [g](https://example.com/#x)\n"
        "`[h](#in-code)`\n```\n[i](#in-a-block)\n```\n[two\nlines](#nor-this)\n"
    )
    assert broken_links(document) == [
        "other.md#nowhere: no such heading",
        "missing.md: no such file",
        "#gone: no such heading",
        "#nor-this: no such heading",
    ]


@pytest.mark.parametrize(
    "document", DOCUMENTS + LINKED_ONLY, ids=lambda path: str(path.relative_to(ROOT))
)
def test_every_relative_link_names_a_file_and_a_heading_that_exist(document: Path) -> None:
    assert broken_links(document) == []


# -- against a stack ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(tmp_path_factory.mktemp("readme"), ping_every="1s") as running:
        yield running


def environment(stack: Stack) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "STATS_API_TOKEN")}
    # A reader's shell does not have the venv on its PATH unless they activate it: neither does
    # a block's, so a block that calls `modelstats` bare fails here as it would for them.
    venv_bin = Path(sys.prefix, "bin").resolve()
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p).resolve() != venv_bin]
    env["PATH"] = os.pathsep.join(path)
    env["MODELSTATS_DATA_DIR"] = str(stack.data_dir)
    return env


def reader_directory(tmp_path: Path) -> Path:
    """A directory outside the checkout where `.venv` is the checkout's (this interpreter's),
    and `examples/` the checkout's (a reader runs them from the checkout)."""
    (tmp_path / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    return tmp_path


def as_written_here(text: str, stack: Stack) -> str:
    return text.replace("127.0.0.1:8080", f"127.0.0.1:{stack.broker_port}").replace(
        "127.0.0.1:8081", f"127.0.0.1:{stack.stats_port}"
    )


def run_block(block: Block, stack: Stack, cwd: Path) -> subprocess.CompletedProcess[str]:
    text = as_written_here(block.text, stack)
    argv = [sys.executable, "-c", text] if block.language == "python" else ["bash", "-c"]
    if block.language != "python":
        argv.append(PRELUDE + text)
    return subprocess.run(
        argv,
        cwd=cwd,
        env=environment(stack),
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT,
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_readme_runs_as_written(stack: Stack, tmp_path: Path) -> None:
    cwd = reader_directory(tmp_path)
    ran = 0
    for block in checked_blocks():
        if block.action != "run":
            continue
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            done = run_block(block, stack, cwd)
            if done.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert done.returncode == 0, (
            f"block at {block.where} exited {done.returncode}:\n{block.text}\n"
            f"--- stdout\n{done.stdout[-2000:]}\n--- stderr\n{done.stderr[-2000:]}"
        )
        ran += 1
    assert ran >= 6


def stats(stack: Stack, path: str) -> dict[str, Any] | None:
    response = httpx.get(f"{stack.stats}{path}", timeout=5)
    return response.json() if response.status_code == 200 else None


@pytest.mark.slow
def test_the_banner_shows_the_database_and_the_demo_labelled_apart(stack: Stack) -> None:
    output = stack.output()
    assert f"database        {stack.state.database_url}  (embedded" in output
    assert (
        "demo            PingSource demo-schedule (infra/overlays/demo/demo.yaml) writes random"
        " GPT, Llama, Mistral v1"
    ) in output
    # The manifest's rules file is the cluster's: the banner says which one is read instead.
    assert (
        "alert: ALERT_RULES_FILE=/etc/modelstats/rules/alert-rules.yaml is a path in the"
        " cluster's container"
    ) in output
    assert "so alert uses its default, infra/knative/rules/alert-rules.yaml in the checkout" in (
        output
    )
    assert "make run ARGS=--no-demo" in output
    assert "/stats/fraud-detector/v3" in output
    demo = poll(
        lambda: stats(stack, "/stats/Llama/v1?label.demo=synthetic"),
        timeout=30,
        what="demo samples of Llama v1 labelled demo=synthetic",
    )
    assert demo["metrics"]["prediction_accuracy"]["count"] >= 1
    stack.post({"model": "fraud-detector", "version": "v3", "metrics": {"drift": 0.1}})
    ours = poll(
        lambda: stats(stack, "/stats/fraud-detector/v3"), timeout=30, what="fraud-detector v3"
    )
    assert ours["metrics"]["drift"]["count"] >= 1
    # The demo never writes the README's model.
    labelled = stats(stack, "/stats/fraud-detector/v3?label.demo=synthetic")
    assert labelled is not None and labelled["metrics"] == {}


@pytest.mark.slow
def test_the_example_model_server_reports_through_the_stack(stack: Stack) -> None:
    with example_server(stack.ingress, env="readme-example") as url:
        bodies = [{"amount": 100.0, "fraud": False}, {"amount": 5000.0, "fraud": True}]
        bodies += [{"amount": 700.0}, {"amount": 1500.0, "fraud": False}]
        answers = [httpx.post(f"{url}/predict", json=body, timeout=5).json() for body in bodies]
        assert [answer["fraud"] for answer in answers] == [False, True, False, True]
    result = poll(
        lambda: stats(stack, "/stats/fraud-detector/v3?label.env=readme-example"),
        timeout=30,
        what="the example's reports",
    )
    metrics = result["metrics"]
    assert metrics["inference_time"]["count"] == 4
    # Three predictions knew the truth; the last of them was wrong.
    assert metrics["prediction_accuracy"]["count"] == 3
    assert metrics["prediction_accuracy"]["mean"] == pytest.approx(2 / 3)
    assert metrics["score"]["count"] == 4
