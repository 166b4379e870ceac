"""DVC plots pages draw offline: .dvc/config points `dvc plots show/diff` at
vendor/vega/plots_template.html, which inlines vega, vega-lite and vega-embed, and every plot of
a page made by the real pipeline draws in headless Chromium with networking off. Controls: the
same pages with dvc-render's CDN scripts (or a library missing) are seen as blank, and networking
off really stops a page from reaching a live server."""

from __future__ import annotations

import json
import re
import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from browser import Chromium
from dvc_project import dvc, sample_project
from helpers import ROOT

TEMPLATE = ROOT / "vendor" / "vega" / "plots_template.html"
INLINED = re.compile(r"<script>/\*! (vega[a-z-]*) (\S+) \|.*?</script>", re.S)
REGENERATE = "regenerate it: python scripts/vendor_vega.py (see README, Experiments)"

pytestmark = pytest.mark.browser


def _cdn_scripts() -> dict[str, str]:
    """{package: version} that dvc-render loads from its CDN."""
    from dvc_render.vega import VegaRenderer

    return dict(re.findall(r"/npm/([a-z-]+)@([0-9][^\"/]*)", VegaRenderer.SCRIPTS))


def _with_cdn_scripts(html: str) -> str:
    """The page as dvc-render's own template makes it: the inlined libraries replaced by its
    CDN <script src> tags."""
    from dvc_render.vega import VegaRenderer

    stripped, n = INLINED.subn("", html)
    assert n == 3, "the page does not hold the three inlined libraries"
    return stripped.replace("</head>", f"{VegaRenderer.SCRIPTS}</head>", 1)


@pytest.fixture(scope="module")
def browser():
    with Chromium(offline=True) as b:
        yield b


# -- the template and its wiring (no browser) ----------------------------------------------


def test_dvc_config_points_plots_at_the_vendored_template(monkeypatch):
    """DVC's own resolution of plots.html_template (relative to .dvc/) finds the template."""
    from dvc.cli import parse_args

    monkeypatch.chdir(ROOT)
    for command in ("show", "diff"):
        args = parse_args(["plots", command])
        cmd = args.func(args)
        try:
            resolved = cmd._html_template_path()
        finally:
            cmd.repo.close()
        assert resolved, f"dvc plots {command}: no plots.html_template in .dvc/config"
        assert Path(resolved).resolve() == TEMPLATE.resolve(), resolved
        assert not Path(cmd.repo.config["plots"]["html_template"]).is_absolute()


def test_template_inlines_the_versions_dvc_render_asks_for():
    from dvc_render import RENDERERS
    from dvc_render.html import HTML

    template = TEMPLATE.read_text(encoding="utf-8")
    HTML(template)  # dvc-render accepts it: it has the {plot_divs} placeholder
    inlined = dict(INLINED.findall(template))
    assert inlined == _cdn_scripts(), f"the template is stale; {REGENERATE}"
    # it drops dvc-render's {scripts}: those must be the CDN tags it inlines, and nothing else
    assert "{scripts}" not in template
    extra = [
        src
        for r in RENDERERS
        for src in re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", r.SCRIPTS)
        if not any(f"/npm/{name}@{v}" in src for name, v in inlined.items())
    ]
    assert not extra, f"dvc-render now also loads {extra}; {REGENERATE}"
    assert not re.search(r"<script[^>]*\bsrc=", template)
    assert '<meta charset="utf-8">' in template  # the inlined code is not all ASCII
    licenses = (TEMPLATE.parent / "THIRD_PARTY_LICENSES.txt").read_text(encoding="utf-8")
    for name, version in inlined.items():
        assert f"{name} {version} (BSD-3-Clause)" in licenses
        assert f"{name} {version} (BSD-3-Clause)" in template


# -- the browser check and its controls, on small pages dvc-render makes --------------------


def _png(path: Path, w: int = 4, h: int = 3) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\0" + b"\x80\x20\x20" * w for _ in range(h))
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _small_page(out: Path, template: str | None, image: str = "static/grad.png") -> Path:
    """A page dvc-render makes: a line plot, a confusion matrix and an image."""
    from dvc_render import ImageRenderer, VegaRenderer, render_html

    out.mkdir(parents=True, exist_ok=True)
    (out / "static").mkdir(exist_ok=True)
    _png(out / "static" / "grad.png")
    loss = [{"step": i, "loss": 1 / (i + 1), "rev": "a"} for i in range(6)]
    confusion = [{"actual": a, "predicted": p, "rev": "a"} for a in "xyz" for p in "xyzz"]
    renderers = [
        VegaRenderer(loss, "loss", x="step", y="loss", template="linear"),
        VegaRenderer(confusion, "confusion", x="actual", y="predicted", template="confusion"),
        ImageRenderer([{"src": image, "rev": "a"}], "grad.png"),
    ]
    return Path(render_html(renderers, out / "index.html", html_template=template))


def test_vendored_template_draws_offline(browser, tmp_path):
    report = browser.render(_small_page(tmp_path, str(TEMPLATE)))
    assert len(report.vega) == 2 and len(report.images) == 1, report.summary()
    assert report.all_drew, report.summary()
    assert not report.blocked and not report.errors, report.summary()


def test_blank_plots_are_reported(browser, tmp_path):
    """Negative controls: dvc-render's CDN page, the template without vega-lite, a missing
    image. Each is seen as not drawn."""
    cdn = browser.render(_small_page(tmp_path / "cdn", None))
    assert len(cdn.vega) == 2 and not any(p.drew for p in cdn.vega), cdn.summary()
    assert any("cdn.jsdelivr.net" in u for u in cdn.blocked), cdn.summary()

    page = _small_page(tmp_path / "no-lite", str(TEMPLATE), image="static/missing.png")
    html = page.read_text(encoding="utf-8")
    page.write_text(re.sub(r"<script>/\*! vega-lite .*?</script>", "", html, flags=re.S))
    broken = browser.render(page)
    assert len(broken.vega) == 2 and not any(p.drew for p in broken.vega), broken.summary()
    assert len(broken.images) == 1 and not broken.images[0].drew, broken.summary()


@pytest.mark.parametrize(
    "page", sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "reports").rglob("*.html"))
)
def test_committed_report_pages_draw_offline(browser, page):
    report = browser.render(ROOT / page)
    fix = f"made with the CDN template? python scripts/vendor_vega.py --rewrap {page}"
    assert report.all_drew, f"{report.summary()}\n{fix}"


class _Scripts(BaseHTTPRequestHandler):
    """Serves the vendored libraries under the CDN's paths and counts the requests."""

    scripts: ClassVar[dict[str, bytes]] = {}
    requests: ClassVar[list[str]] = []

    def do_GET(self):
        type(self).requests.append(self.path)
        body = self.scripts.get(self.path)
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", "application/javascript; charset=utf-8")
        self.send_header("Content-Length", str(len(body or b"")))
        self.end_headers()
        self.wfile.write(body or b"")

    def log_message(self, *args):
        pass


def test_networking_off_stops_a_page_reaching_a_live_server(tmp_path):
    """The CDN page, pointed at a real HTTP server on loopback that serves the libraries:
    with networking on it draws (so the server and the page work), with it off the server gets
    no request at all and nothing draws."""
    template = TEMPLATE.read_text(encoding="utf-8")
    _Scripts.scripts = {
        f"/npm/{name}@{version}": re.search(
            rf"<script>(/\*! {re.escape(name)} .*?)</script>", template, re.S
        )
        .group(1)
        .encode()
        for name, version in _cdn_scripts().items()
    }
    _Scripts.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripts)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = _small_page(tmp_path, None)
        html = page.read_text(encoding="utf-8")
        local = html.replace("https://cdn.jsdelivr.net", f"http://127.0.0.1:{server.server_port}")
        assert local != html
        page.write_text(local, encoding="utf-8")

        with Chromium(offline=False) as online:
            report = online.render(page)
        assert report.all_drew, report.summary()
        assert len(_Scripts.requests) == 3, _Scripts.requests

        _Scripts.requests.clear()
        with Chromium(offline=True) as offline:
            report = offline.render(page)
        assert _Scripts.requests == [], "a request reached the server with networking off"
        assert len(report.blocked) == 3, report.summary()
        assert len(report.vega) == 2 and not any(p.drew for p in report.vega), report.summary()
    finally:
        server.shutdown()
        server.server_close()


# -- the real pipeline: dvc plots diff / show pages ------------------------------------------


@pytest.mark.e2e
def test_dvc_plots_pages_draw_offline(browser, tmp_path):
    """Two experiments of the real pipeline on the sample; plain `dvc plots diff` and
    `dvc plots show` (no --html-template: .dvc/config chooses it) write pages on which every
    plot draws with networking off; the same page with dvc-render's CDN scripts does not."""
    project = sample_project(tmp_path)
    dvc(project, "exp", "run", "-n", "exp-a")
    dvc(project, "exp", "run", "-n", "exp-b", "-S", "train.lr=0.002")

    dvc(project, "plots", "diff", "exp-a", "exp-b", "-o", "diff")
    dvc(project, "plots", "show")  # to plots.out_dir, dvc_plots/ by default
    pages = {"diff": project / "diff" / "index.html", "show": project / "dvc_plots" / "index.html"}
    # every plot dvc.yaml defines is on the diff page: as many views and images as in --json
    data = json.loads(dvc(project, "plots", "diff", "exp-a", "exp-b", "--json").stdout)["data"]
    n_vega = sum(1 for plots in data.values() for p in plots if p["type"] == "vega")
    n_images = sum(1 for plots in data.values() for p in plots if p["type"] == "image")
    assert n_vega >= 3 and n_images >= 2, data.keys()

    for name, page in pages.items():
        html = page.read_text(encoding="utf-8")
        assert "cdn.jsdelivr.net" not in html and "<script src=" not in html, name
        report = browser.render(page)
        assert report.vega and report.images, report.summary()
        assert report.all_drew, report.summary()
        assert not report.blocked, report.summary()
        if name == "diff":
            assert (len(report.vega), len(report.images)) == (n_vega, n_images), report.summary()

    # negative control: the same diff page with the CDN scripts dvc-render would have used
    cdn_page = pages["diff"].with_name("cdn.html")
    cdn_page.write_text(_with_cdn_scripts(pages["diff"].read_text(encoding="utf-8")))
    cdn = browser.render(cdn_page)
    assert len(cdn.vega) == n_vega and not any(p.drew for p in cdn.vega), cdn.summary()
    assert all(p.drew for p in cdn.images), cdn.summary()  # local files still load
    assert any("cdn.jsdelivr.net" in u for u in cdn.blocked), cdn.summary()
