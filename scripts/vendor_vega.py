"""Rebuild vendor/vega/plots_template.html: DVC's plots page with vega, vega-lite and vega-embed
inlined, so that `dvc plots show` / `dvc plots diff` pages draw without a network.

dvc-render's default page loads the three libraries from a CDN (its VegaRenderer.SCRIPTS, e.g.
https://cdn.jsdelivr.net/npm/vega@5.20.2). This script reads those package names and versions
from the installed dvc_render, fetches exactly those versions from the npm registry with
`npm pack` (npm checks each tarball against the registry's sha512 integrity), and inlines the
very file the CDN address serves (the package.json "jsdelivr" field: build/*.min.js). License
texts of the three packages and of the packages bundled into their builds (read from the
builds' source maps) go into vendor/vega/THIRD_PARTY_LICENSES.txt and into a comment in the
template, so every generated page carries them.

    source .venv/bin/activate && python scripts/vendor_vega.py          # rewrite both files
    python scripts/vendor_vega.py --check   # exit 1 if the committed files differ from a rebuild
    python scripts/vendor_vega.py --rewrap dvc_plots/index.html   # an older page, made offline

Needs npm and the npm registry. .dvc/config points DVC at the template (plots.html_template).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "vendor" / "vega"
TEMPLATE = OUT_DIR / "plots_template.html"
LICENSES = OUT_DIR / "THIRD_PARTY_LICENSES.txt"
PACKAGES = ("vega", "vega-lite", "vega-embed")  # load order: each needs the ones before it
# dvc-render replaces these in the whole template text; none may occur in the inlined code
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")
# Bundled into a build but no longer installed for the same ranges: vega-embed 6.18.2's build
# contains semver 7.3 with its dependency lru-cache 6 (and so yallist 4); semver >= 7.5 has none.
NO_LONGER_INSTALLED = {"lru-cache": "6", "yallist": "4"}


@dataclass
class Package:
    name: str
    version: str
    integrity: str  # the registry's sha512, checked by npm pack
    js_path: str  # the file the CDN address serves
    js: str
    license_id: str
    license_text: str
    bundled: list[str]  # node_modules packages compiled into js (from its source map)


def dvc_render_versions() -> dict[str, str]:
    """{package: version} of the CDN scripts of the installed dvc-render."""
    from dvc_render.vega import VegaRenderer

    found = dict(re.findall(r"/npm/([a-z-]+)@([0-9][^\"/]*)", VegaRenderer.SCRIPTS))
    if sorted(found) != sorted(PACKAGES):
        sys.exit(f"error: unexpected dvc_render VegaRenderer.SCRIPTS:\n{VegaRenderer.SCRIPTS}")
    return found


def _npm(args: list[str], cwd: Path) -> str:
    proc = subprocess.run(["npm", *args], cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"error: npm {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


def _license_file(pkg_dir: Path) -> str | None:
    for path in sorted(pkg_dir.iterdir()):
        if re.fullmatch(r"(?i)(licen[cs]e|copying)(\.(md|txt))?", path.name):
            return path.read_text(encoding="utf-8").strip()
    return None


def _unpack(spec: str, work: Path) -> tuple[Path, dict]:
    """npm pack `spec` into work/; return the unpacked package folder and npm's pack record."""
    [packed] = json.loads(_npm(["pack", spec, "--json", "--silent"], work))
    dest = work / "unpacked" / packed["filename"]
    dest.mkdir(parents=True)
    with tarfile.open(work / packed["filename"]) as tar:
        tar.extractall(dest, filter="data")
    return dest / "package", packed


def fetch_package(name: str, version: str, work: Path) -> Package:
    pkg_dir, packed = _unpack(f"{name}@{version}", work)
    meta = json.loads((pkg_dir / "package.json").read_text(encoding="utf-8"))
    if meta["version"] != version:
        sys.exit(f"error: npm pack {name}@{version} gave version {meta['version']}")
    js_path = meta["jsdelivr"]
    js = (pkg_dir / js_path).read_text(encoding="utf-8")
    # the source map is not inlined: drop the comment that points at it
    js = re.sub(r"\n//# sourceMappingURL=\S+\s*$", "\n", js).rstrip() + "\n"
    for bad in ("</script", "<!--", "sourceMappingURL", *PLACEHOLDERS):
        if bad.lower() in js.lower():
            sys.exit(f"error: {name}/{js_path} contains {bad!r}; it cannot be inlined as is")
    sources = json.loads((pkg_dir / f"{js_path}.map").read_text(encoding="utf-8"))["sources"]
    bundled = sorted(
        {m.group(1) for s in sources if (m := re.search(r"node_modules/((?:@[^/]+/)?[^/]+)", s))}
    )
    license_text = _license_file(pkg_dir)
    if license_text is None:
        sys.exit(f"error: {name}@{version} has no LICENSE file")
    return Package(
        name, version, packed["integrity"], js_path, js, meta["license"], license_text, bundled
    )


def bundled_licenses(packages: list[Package], work: Path) -> list[tuple[str, str, str, str]]:
    """(name, version, license id, license text) of every package bundled into the builds, as
    npm installs them today for the same dependency ranges."""
    inst = work / "install"
    inst.mkdir()
    (inst / "package.json").write_text('{"private": true}\n', encoding="utf-8")
    specs = [f"{p.name}@{p.version}" for p in packages]
    _npm(
        [
            "install",
            "--ignore-scripts",
            "--omit=optional",
            "--no-audit",
            "--no-fund",
            "--legacy-peer-deps",  # vega-lite 5.2.0 asks for vega ^5.21 as a peer; dvc-render
            "--silent",  # pins vega 5.20.2 (and the browser test shows the pair works)
            *specs,
        ],
        inst,
    )
    out = []
    own = {p.name for p in packages}
    for name in sorted({b for p in packages for b in p.bundled} - own):
        # the top-level copy, else the least nested one
        found = sorted(
            inst.glob(f"**/node_modules/{name}/package.json"), key=lambda p: len(p.parts)
        )
        if found:
            pkg_dir = found[0].parent
        elif name in NO_LONGER_INSTALLED:
            pkg_dir, _ = _unpack(f"{name}@{NO_LONGER_INSTALLED[name]}", work)
        else:
            sys.exit(f"error: bundled package {name} is not in the npm install")
        meta = json.loads((pkg_dir / "package.json").read_text(encoding="utf-8"))
        lic = meta.get("license", "?")
        text = _license_file(pkg_dir) or f"(the package ships no license file; license: {lic})"
        out.append((name, meta["version"], lic, text))
    return out


def licenses_text(packages: list[Package], bundled: list[tuple[str, str, str, str]]) -> str:
    rule = "=" * 78
    parts = [
        "Third-party code inlined into vendor/vega/plots_template.html (and so into every page\n"
        "`dvc plots show` / `dvc plots diff` writes in this repository). Generated by\n"
        "scripts/vendor_vega.py; do not edit.\n"
    ]
    for p in packages:
        parts.append(
            f"{rule}\n{p.name} {p.version} ({p.license_id}), npm tarball {p.integrity}\n"
            f"inlined file: {p.name}/{p.js_path}\n"
            f"bundled into it: {', '.join(p.bundled) or 'nothing'}\n{rule}\n\n{p.license_text}\n"
        )
    parts.append(
        f"{rule}\nPackages bundled into the builds above. Their builds name no versions; the\n"
        "license texts below are those of the versions npm installs today for the same\n"
        f"dependency ranges.\n{rule}\n"
    )
    for name, version, lic, text in bundled:
        parts.append(f"--- {name} ({lic}; text from {version}) ---\n\n{text}\n")
    return "\n".join(parts)


def template_text(packages: list[Package], licenses: str) -> str:
    if "-->" in licenses or "--!>" in licenses:
        sys.exit("error: the license texts contain an HTML comment end")
    versions = ", ".join(f"{p.name} {p.version}" for p in packages)
    scripts = "\n".join(
        f"    <script>/*! {p.name} {p.version} | {p.license_id} | npm {p.name}/{p.js_path} "
        f"| licenses at the end of this page's head */\n{p.js}    </script>"
        for p in packages
    )
    # dvc-render's PAGE_HTML with the CDN scripts inlined. It has no {scripts} placeholder: the
    # only scripts dvc-render adds are the CDN tags of VegaRenderer.SCRIPTS, replaced here.
    return f"""<!DOCTYPE html>
<html>
<head>
    <meta charset="utf-8">
    {{refresh_tag}}
    <title>DVC Plot</title>
    <!-- DVC plots page template with {versions} inlined, so plots draw offline.
         Generated by scripts/vendor_vega.py from the npm packages; do not edit. -->
{scripts}
    <style>
        table {{
            border-spacing: 15px;
        }}
    </style>
    <!-- Licenses of the inlined code:

{licenses}
    -->
</head>
<body>
    {{plot_divs}}
</body>
</html>
"""


def build() -> tuple[str, str]:
    versions = dvc_render_versions()
    with tempfile.TemporaryDirectory(prefix="vendor-vega-") as tmp:
        work = Path(tmp)
        packages = [fetch_package(name, versions[name], work) for name in PACKAGES]
        licenses = licenses_text(packages, bundled_licenses(packages, work))
    return template_text(packages, licenses), licenses


def rewrap(page: Path) -> None:
    """Give a page dvc-render wrote with its default (CDN) template the committed template:
    the same text `dvc plots show/diff` now writes for the same plots."""
    from dvc_render.html import HTML
    from dvc_render.vega import VegaRenderer

    html = page.read_text(encoding="utf-8")
    body = re.fullmatch(r"(?s)(.*)<body>\n    (.*)\n</body>\n</html>", html)
    if not body or VegaRenderer.SCRIPTS not in body.group(1):
        sys.exit(f"error: {page} is not a page of dvc-render's default template")
    document = HTML(TEMPLATE.read_text(encoding="utf-8"))
    document.with_element(body.group(2))
    page.write_text(document.embed(), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="compare with the committed files, write nothing"
    )
    parser.add_argument(
        "--rewrap",
        nargs="+",
        metavar="PAGE",
        help="rewrite pages made with dvc-render's CDN template (e.g. an old dvc_plots/index.html)"
        " into the committed template, plots unchanged; no npm needed",
    )
    args = parser.parse_args()
    if args.rewrap:
        for page in map(Path, args.rewrap):
            rewrap(page)
            print(f"rewrapped {page}")
        return 0
    template, licenses = build()
    if args.check:
        stale = [
            str(path.relative_to(ROOT))
            for path, text in ((TEMPLATE, template), (LICENSES, licenses))
            if not path.is_file() or path.read_text(encoding="utf-8") != text
        ]
        if stale:
            print(f"differs from a rebuild: {', '.join(stale)}", file=sys.stderr)
            return 1
        print("vendor/vega is up to date")
        return 0
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    TEMPLATE.write_text(template, encoding="utf-8")
    LICENSES.write_text(licenses, encoding="utf-8")
    print(f"wrote {TEMPLATE.relative_to(ROOT)} ({TEMPLATE.stat().st_size:,} bytes)")
    print(f"wrote {LICENSES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
