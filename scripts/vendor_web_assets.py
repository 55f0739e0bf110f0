#!/usr/bin/env python3
"""Vendor the few web files the offline slides and course site need into course_tools/static/vendor/.

nbconvert's reveal.js and HTML templates load reveal.js, require.js, jQuery and MathJax 2 from CDNs.
The course ships local copies instead, so that slides and pages work from ``file://`` without a
network.  This script fetches the packages with ``npm pack`` (the npm registry) and copies only the
files that a page actually loads, with their licence files:

* reveal.js 5: ``dist/reveal.{js,css}``, the ``white`` theme and its Source Sans Pro woff fonts,
  the speaker-notes plugin;
* require.js 2, jQuery 3 (minified);
* MathJax 2.7.9: ``MathJax.js``, the combined ``TeX-AMS_CHTML-full`` configuration, the CommonHTML
  output's on-demand font data and the TeX woff fonts.

Run it again only to change versions (it replaces the vendor folder):
``python3 scripts/vendor_web_assets.py``.  Needs ``npm``.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENDOR = ROOT / "course_tools" / "static" / "vendor"

PACKAGES = {
    # folder under vendor/: (npm spec, [paths or glob patterns inside the package])
    "reveal.js": ("reveal.js@5.2.1", [
        "LICENSE", "dist/reveal.js", "dist/reveal.css", "dist/theme/white.css",
        "dist/theme/fonts/source-sans-pro/LICENSE", "dist/theme/fonts/source-sans-pro/source-sans-pro.css",
        "dist/theme/fonts/source-sans-pro/*.woff", "plugin/notes/notes.js",
    ]),
    "requirejs": ("requirejs@2.3.8", ["require.js", "package.json"]),
    "jquery": ("jquery@3.8.0", ["LICENSE.txt", "dist/jquery.min.js"]),
    "mathjax": ("mathjax@2.7.9", [
        "LICENSE", "MathJax.js", "config/TeX-AMS_CHTML-full.js",
        "jax/output/CommonHTML/fonts/TeX/*.js", "jax/output/CommonHTML/autoload/*.js",
        "fonts/HTML-CSS/TeX/woff/*.woff", "extensions/MathMenu.js", "extensions/MathZoom.js",
    ]),
}


def main() -> int:
    if shutil.which("npm") is None:
        sys.exit("npm is needed to fetch the packages (Debian: apt-get install npm)")
    if VENDOR.exists():
        shutil.rmtree(VENDOR)
    with tempfile.TemporaryDirectory() as tmp:
        for folder, (spec, patterns) in PACKAGES.items():
            tarball = subprocess.run(["npm", "pack", "--silent", spec], cwd=tmp, check=True,
                                     capture_output=True, text=True).stdout.split()[-1]
            unpacked = Path(tmp) / folder
            with tarfile.open(Path(tmp) / tarball) as archive:
                archive.extractall(unpacked, filter="data")
            package = unpacked / "package"
            for pattern in patterns:
                matches = sorted(package.glob(pattern))
                if not matches:
                    sys.exit(f"{spec}: nothing matches {pattern}")
                for source in matches:
                    target = VENDOR / folder / source.relative_to(package)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, target)
            print(f"{spec}: {sum(1 for p in (VENDOR / folder).rglob('*') if p.is_file())} files")
    (VENDOR / "requirejs" / "LICENSE").write_text(
        "require.js is released under the MIT license (see the header of require.js and package.json).\n"
        "Copyright jQuery Foundation and other contributors, https://github.com/requirejs/requirejs\n")
    (VENDOR / "README.md").write_text(
        "Local copies of the web libraries the offline slides and course pages load, with their licences.\n"
        "Written by scripts/vendor_web_assets.py (npm packages: "
        + ", ".join(spec for spec, _ in PACKAGES.values()) + "); do not edit by hand.\n")
    total = sum(p.stat().st_size for p in VENDOR.rglob("*") if p.is_file())
    print(f"vendored {total / 1e6:.2f} MB into {VENDOR.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
