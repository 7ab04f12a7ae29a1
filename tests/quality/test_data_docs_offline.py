"""GX Data Docs open offline: the quarantine of a real defective file (CryptoDataDownload's XRP hourly CSV, whose
local-time rows repeat UTC ones) writes a Data Docs site whose pages fetch nothing from the network, and in
headless chromium, with every off-machine request blocked, the index draws its tables, the validation page shows
its styled results, and no script fails. Without the rewrite GX's pages load jQuery, Bootstrap, bootstrap-table,
Font Awesome and vega from CDNs: blank tables, unstyled, `$ is not defined` (the last test shows the rewrite is
what removes them)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from browser_support import browser, not_blank, watch

from core.params import load_params
from market.history import import_file
from quality.data_docs import offline_page, remote_references
from quality.expectations import DataQualityError, gate

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CDD_XRP = ROOT / "data" / "sample" / "kraken" / "Kraken_XRPUSD_1h.csv"

# tags GX 1.x writes on every page (copied from a generated page, shortened)
GX_HEAD = """<head>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<link rel="stylesheet" href="https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css">
<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
<script src="https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js" crossorigin="anonymous">
</script>
<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>
<style>.x{background:url('https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/full_logo_dark.png')}</style>
</head><body><img class="NO-CACHE" src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1"
alt="Great Expectations"/><a href="https://docs.greatexpectations.io/docs">docs</a></body>"""


def test_the_rewrite_removes_every_remote_script_style_and_image_but_keeps_links() -> None:
    assert len(remote_references(GX_HEAD)) == 7
    page = offline_page(GX_HEAD, "../static/images/logo-long.png")
    assert remote_references(page) == []
    assert 'src="../static/images/logo-long.png"' in page and "url('../static/images/logo-long.png')" in page
    assert '<a href="https://docs.greatexpectations.io/docs">' in page  # a link is not a request
    assert "window.$ = window.jQuery" in page and page.index("window.$") < page.index("</head>")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rules = load_params(ROOT / "params.yaml").quality
    root = tmp_path_factory.mktemp("quarantine")
    with pytest.raises(DataQualityError):
        gate(import_file(CDD_XRP).frame, rules, "1h", "XRP-USD", root, "run-1",
             now=pd.Timestamp("2026-11-24", tz="UTC"))
    return root / "run-1" / "XRP-USD" / "data_docs"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    with browser() as launched:
        yield launched


def test_written_site_asks_the_network_for_nothing(site: Path) -> None:
    pages = sorted(site.rglob("*.html"))
    assert len(pages) == 3  # index, the suite, the validation
    for page in [*pages, *site.rglob("*.css")]:
        assert remote_references(page.read_text(encoding="utf-8")) == [], page


def test_index_draws_its_tables_offline_and_links_to_the_validation(site: Path, chromium: Any) -> None:
    page = chromium.new_page(viewport={"width": 1300, "height": 900})
    seen = watch(page)
    page.goto((site / "index.html").as_uri())
    page.wait_for_load_state("load")
    rows = page.locator("#section-1-content-block-2-1-body-table tbody tr")
    assert rows.count() == 1, seen.problems()  # bootstrap-table's job, done by the offline stand-in
    link = rows.first.locator("a").first.get_attribute("href")  # the status cell opens the validation
    assert link is not None and link.startswith("validations/") and (site / link).is_file()
    assert seen.problems() == []
    assert not_blank(seen.screenshot("gx-data-docs-index"))


def test_validation_page_is_styled_and_its_buttons_work_offline(site: Path, chromium: Any) -> None:
    [validation] = (site / "validations").rglob("*.html")
    page = chromium.new_page(viewport={"width": 1300, "height": 900})
    seen = watch(page)
    page.goto(validation.as_uri())
    page.wait_for_load_state("load")
    assert page.get_by_text("10 unexpected values found").count() >= 1
    badge = page.locator(".badge-secondary").first
    assert badge.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(108, 117, 125)"  # styled
    assert page.locator(".ge-walkthrough-modal").first.is_hidden()
    passed = page.locator(".hide-succeeded-validation-target-child").first
    assert passed.is_visible()
    page.get_by_text("Failed Only").click()
    assert passed.is_hidden()  # the "show failed only" button hides the passing expectations
    assert seen.problems() == []
    assert not_blank(seen.screenshot("gx-data-docs-validation"))
