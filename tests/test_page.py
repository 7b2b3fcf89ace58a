"""The matrix page in a real browser: a cell opens its details, filters hide what they should, and a
clause id leads to its anchor in the spec document. Headless Chromium through Playwright's Python
package, driving the system's browser (no browser download): skipped, with the reason, without one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from .published import HISTORY_CHANGE, build

FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CLAUSE = "variational.input.time_invariant"


def chromium() -> str | None:
    for name in (os.environ.get("DROPSPEC_CHROMIUM", ""), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="no browser driver: `pip install playwright` (no `playwright install` needed)"
    )
    executable = chromium()
    if executable is None:
        pytest.skip("no browser: install Chromium (`apt-get install -y chromium`) or set DROPSPEC_CHROMIUM")
    _, reports = build(tmp_path_factory.mktemp("page"))
    with sync_api.sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
        browser = pw.chromium.launch_persistent_context(
            profile, executable_path=executable, headless=True, args=FLAGS, viewport={"width": 1400, "height": 900}
        )
        tab = browser.new_page()
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        tab.goto((reports / "index.html").as_uri())
        yield tab
        browser.close()
    assert not errors, errors


def cell(tab, adapter: str, clause: str):
    return tab.locator(f'button.cell[data-adapter="{adapter}"][data-clause="{clause}"]')


def test_a_cell_opens_its_details(page) -> None:
    assert page.locator("#details").is_hidden()
    cell(page, "per_step", CLAUSE).click()
    details = page.locator("#details")
    details.wait_for(state="visible")
    assert details.locator("#details-verdict").inner_text().startswith("FAIL")
    assert "input mask resample=per_step, but should be per_sequence" in details.inner_text()
    assert "documented as variational" in details.inner_text()
    image = details.locator("img").first
    image.scroll_into_view_if_needed()
    assert image.get_attribute("src") == "masks/per_step/lstm-variational.png"
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    details.locator("details.repro summary").first.click()
    assert f"dropspec explain per_step lstm-variational {CLAUSE}" in details.inner_text()
    assert page.url.endswith(f"#cell/per_step/{CLAUSE}")
    page.keyboard.press("Escape")
    assert details.is_hidden()


def test_no_data_is_shown_as_such(page) -> None:
    button = cell(page, "missing_framework", "common.seed.reproducible")
    assert button.inner_text() == "no data" and "v-no_data" in button.get_attribute("class")
    button.click()
    assert "no data: the adapter could not run here" in page.locator("#details").inner_text()
    page.keyboard.press("Escape")


def test_filters(page) -> None:
    rows = page.locator("tr.clause-row")
    page.select_option("#f-status", "fail")
    assert page.locator(f'tr.clause-row[data-clause="{CLAUSE}"]').is_visible()
    assert page.locator('tr.clause-row[data-clause="common.seed.reproducible"]').is_hidden()
    visible = [r for r in rows.all() if r.is_visible()]
    assert visible and all("FAIL" in r.inner_text() for r in visible)
    page.select_option("#f-status", "")

    page.select_option("#f-cell", "rnn")  # per_step only ran an LSTM case: nothing to judge for rnn
    assert cell(page, "per_step", CLAUSE).inner_text() == "n/a"
    assert cell(page, "reference", "zaremba.input.fresh_each_step").inner_text() == "pass 1/1"
    page.select_option("#f-cell", "")
    assert cell(page, "per_step", CLAUSE).inner_text().startswith("FAIL")

    page.select_option("#f-framework", "reprolib")
    assert page.locator('th.adapter[data-adapter="with_repro"]').is_visible()
    assert page.locator('th.adapter[data-adapter="reference"]').is_hidden()
    assert cell(page, "reference", CLAUSE).is_hidden()
    page.select_option("#f-framework", "")
    assert cell(page, "reference", CLAUSE).is_visible()


def test_history_highlights_the_release_where_a_clause_changed(page) -> None:
    # tests/published.py writes two releases of the reference; the newer fails HISTORY_CHANGE
    clause, case = HISTORY_CHANGE
    page.click('nav a[href="#history"]')
    assert page.evaluate("location.hash") == "#history"
    section = page.locator("#history")
    assert section.is_visible() and "reference" in section.locator("h3").first.inner_text()
    row = section.locator(f'tr.hist-row[data-clause="{clause}"]')
    changed = row.locator("td.hv.changed")
    assert changed.count() == 1 and changed.get_attribute("data-release") == "reference-1.1"
    assert "changed in 1.1" in changed.inner_text() and "FAIL" in changed.inner_text()
    assert row.locator("td.hv").first.inner_text().startswith("pass")
    assert row.locator("td.changed-in").inner_text() == "1.1"
    row.locator("details summary").click()
    assert case in row.locator("table.cases").inner_text()
    changes = section.locator("details.changes")
    changes.locator("summary").click()  # closed by default: the clause table comes first
    assert changes.locator("h4").count() == 1 and "1.1" in changes.locator("h4").inner_text()
    assert f"pass -> FAIL: {clause}" in changes.inner_text()
    unchanged = section.locator('tr.hist-row[data-clause="common.seed.reproducible"]')
    assert unchanged.count() == 1 and unchanged.locator("td.hv.changed").count() == 0
    assert unchanged.locator("td.changed-in").inner_text() == "-"


def test_a_clause_links_to_its_anchor_in_the_spec(page) -> None:
    link = page.locator(f'tr.clause-row[data-clause="{CLAUSE}"] a.clause-link')
    link.click()
    page.wait_for_load_state()
    assert page.url.endswith(f"spec/index.html#{CLAUSE}")
    target = page.locator(f'[id="{CLAUSE}"]')
    assert target.is_visible() and page.evaluate("location.hash") == f"#{CLAUSE}"
    assert "The input mask MUST be one mask for the whole sequence" in target.inner_text()
    assert page.evaluate("document.querySelector(':target').id") == CLAUSE
    page.go_back()
