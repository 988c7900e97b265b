"""The dashboard's files as the stats function serves them (the page in a browser is in
test_dashboard_browser.py, the API answers it builds on in test_dashboard_api.py)."""

from __future__ import annotations

import hashlib
import re
from importlib import resources

from modelstats.stats import dashboard
from tests.configuration import configure
from tests.stats.samples import client

FOLDER = resources.files("modelstats.stats.dashboard")


def test_page_and_files_are_public_typed_and_cacheable(clean_db: str) -> None:
    configure(STATS_API_TOKEN="s3cret")
    with client() as http:
        page = http.get("/")
        script = http.get("/dashboard/app.js")
        style = http.get("/dashboard/app.css")
        uplot = http.get(f"/dashboard/uplot-{dashboard.UPLOT_VERSION}.iife.min.js")
        again = http.get("/dashboard/app.js", headers={"If-None-Match": script.headers["etag"]})
        missing = http.get("/dashboard/secrets.txt")
        api = http.get("/models")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"
    assert style.headers["content-type"] == "text/css; charset=utf-8"
    for response in (page, script, style):
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-cache"
        assert "default-src 'self'" in response.headers["content-security-policy"]
    assert uplot.status_code == 200
    assert uplot.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert again.status_code == 304 and again.content == b""
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert api.status_code == 401  # the page is public, the data is not


def test_the_page_refers_only_to_files_the_function_serves() -> None:
    page = FOLDER.joinpath("index.html").read_text("utf-8")
    referred = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert referred, "the page loads no script or style"
    files = [name for name in referred if not name.startswith("data:")]
    assert {name.removeprefix("dashboard/") for name in files} <= set(dashboard.assets())
    assert all(name.startswith("dashboard/") for name in files)
    scripts = "".join(FOLDER.joinpath(n).read_text("utf-8") for n in dashboard.OWN if ".js" in n)
    imported = set(re.findall(r'from "\./([a-z]+\.js)"', scripts))
    assert imported and imported <= set(dashboard.OWN)
    assert not re.search(r"https?://", page + scripts)  # nothing from elsewhere


def test_vendored_uplot_is_the_version_its_note_says() -> None:
    vendor = FOLDER.joinpath("vendor", "uplot")
    script = vendor.joinpath("uPlot.iife.min.js").read_bytes()
    assert script.startswith(
        b"/*! https://github.com/leeoniya/uPlot (v" + b"%s) */" % (dashboard.UPLOT_VERSION.encode())
    )
    note = vendor.joinpath("SOURCE.md").read_text("utf-8")
    assert f"uplot@{dashboard.UPLOT_VERSION}" in note
    for name in ("uPlot.iife.min.js", "uPlot.min.css"):
        digest = hashlib.sha256(vendor.joinpath(name).read_bytes()).hexdigest()
        assert f"`{name}` sha256 {digest}" in note
    assert "MIT License" in vendor.joinpath("LICENSE").read_text("utf-8")
