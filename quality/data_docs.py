"""GX Data Docs that open offline. GX's pages load jQuery, Bootstrap, bootstrap-table, Font Awesome, vega and a
logo from CDNs: offline a page is unstyled, its index tables stay empty (bootstrap-table draws them from inline
JSON) and every inline script throws `$ is not defined`. `make_offline` rewrites a written site in place: the
remote <script> and <link> tags go, a small stylesheet and a plain-DOM stand-in for the few jQuery calls the
pages make (data_docs_assets/, shipped with the package) are inlined, and remote logos point at the site's own
static/images copy. No page then asks the network for anything (tests/quality/test_data_docs_offline.py).
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path

REMOTE = r"""(?:https?:)?//[^"'\s>)]+"""
_REMOTE_SCRIPT = re.compile(rf"""<script\b[^>]*\bsrc\s*=\s*["']{REMOTE}["'][^>]*>\s*</script>\s*""", re.I)
_REMOTE_LINK = re.compile(rf"""<link\b[^>]*\bhref\s*=\s*["']{REMOTE}["'][^>]*>\s*""", re.I)
_REMOTE_IMG_SRC = re.compile(rf"""(<img\b[^>]*\bsrc\s*=\s*["']){REMOTE}(["'])""", re.I)
_REMOTE_CSS_URL = re.compile(rf"""url\(\s*(["']?){REMOTE}\1\s*\)""", re.I)
LOGO = "static/images/logo-long.png"


@lru_cache(maxsize=1)
def _assets() -> tuple[str, str]:
    folder = resources.files("quality").joinpath("data_docs_assets")
    return (folder.joinpath("offline.css").read_text(encoding="utf-8"),
            folder.joinpath("offline.js").read_text(encoding="utf-8"))


def offline_page(page: str, logo: str) -> str:
    """One Data Docs page with nothing remote left: `logo` is the site's logo relative to the page."""
    css, js = _assets()
    page = _REMOTE_SCRIPT.sub("", page)
    page = _REMOTE_LINK.sub("", page)
    page = _REMOTE_IMG_SRC.sub(lambda m: f"{m.group(1)}{logo}{m.group(2)}", page)
    page = _REMOTE_CSS_URL.sub(f"url('{logo}')", page)
    inline = f"<style>\n{css}</style>\n<script>\n{js}</script>\n"
    return page.replace("</head>", inline + "</head>", 1) if "</head>" in page else inline + page


def offline_stylesheet(text: str, logo: str) -> str:
    return _REMOTE_CSS_URL.sub(f"url('{logo}')", text)


def remote_references(page: str) -> list[str]:
    """What a page would still fetch from the network (tags and CSS url()s); [] once offline."""
    found = [m.group(0) for rx in (_REMOTE_SCRIPT, _REMOTE_LINK, _REMOTE_CSS_URL) for m in rx.finditer(page)]
    return found + [m.group(0) for m in _REMOTE_IMG_SRC.finditer(page)]


def make_offline(site: Path) -> list[Path]:
    """Rewrite every page and stylesheet of a written Data Docs site in place; returns the pages rewritten."""
    pages = sorted(site.rglob("*.html"))
    for path in pages:
        logo = Path(os.path.relpath(site / LOGO, path.parent)).as_posix()
        path.write_text(offline_page(path.read_text(encoding="utf-8"), logo), encoding="utf-8")
    for path in sorted(site.rglob("*.css")):
        logo = Path(os.path.relpath(site / LOGO, path.parent)).as_posix()
        path.write_text(offline_stylesheet(path.read_text(encoding="utf-8"), logo), encoding="utf-8")
    return pages
