"""The static leaderboard page in a real headless browser (Debian's ``chromium`` and ``chromium-driver``
driven by Selenium): it loads without a console error, columns sort, filter boxes filter, nothing is
clipped at 360 px, a recipe named ``<script>…`` is shown as text and never runs, and the CSV download
parses. A missing browser fails the module: CI installs it (apt-get install chromium chromium-driver)."""

from __future__ import annotations

import csv
import io
import json
import os
import sys
import urllib.parse
from pathlib import Path

import pytest

from ferbench import leaderboard as lb
from ferbench.leaderboard.page import CSV_FIELDS
from ferbench.run_record import RESULT

sys.path.insert(0, str(Path(__file__).parent))
from test_leaderboard_fakes import fake_run  # noqa: E402

#: Debian's packages; FERBENCH_CHROMIUM / FERBENCH_CHROMEDRIVER point elsewhere (e.g. a distribution that ships
#: Chromium as a snap). Selenium is always given both paths: it never downloads a browser or a driver.
CHROMIUM = Path(os.environ.get("FERBENCH_CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("FERBENCH_CHROMEDRIVER", "/usr/bin/chromedriver"))
XSS = "<script>alert(1)</script>"
LONG = "a-recipe-name-without-any-space-" + "x" * 60
FACTS = {"params": 1_234_567, "trainable_params": 1_234_567, "gflops": 0.512, "pretrained_source": "imagenet-1k",
         "checkpoint": "weights.pt", "checkpoint_sha256": "c" * 64}
ACCURACY = {"alpha": 0.92, "beta": 0.55, LONG: 0.75, XSS: 0.35}


def _rename(run_dir: Path, name: str) -> None:
    """A recipe name that cannot be a folder name (it holds a ``/``): written into the record itself."""
    path = run_dir / RESULT
    data = json.loads(path.read_text())
    data["recipe"]["name"] = name
    path.write_text(json.dumps(data))


def _curves(run_dir: Path, epochs: int = 4) -> None:
    rows = ["epoch,lr,train_loss,train_accuracy,val_balanced_accuracy,seconds"]
    rows += [f"{i},0.01,{1.5 / (i + 1):.4f},{0.4 + 0.1 * i:.3f},{0.35 + 0.1 * i:.3f},1.0" for i in range(epochs)]
    (run_dir / "curves.csv").write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Four ranked entries on every fold (one named ``<script>…``, one with a long unbroken name), one
    partial entry with a single run; reported figures with user notes; two source datasets; curves."""
    root = tmp_path_factory.mktemp("page")
    runs = root / "runs"
    for i, (name, acc) in enumerate(ACCURACY.items()):
        safe = f"e{i}"
        for fold in range(3):
            run = fake_run(runs, safe, f"{i}" * 16, fold=fold, accuracy=acc, datasets=["toyfer", "otherset"],
                           model=FACTS if name == "alpha" else None,
                           reported={"value": 90.0, "metric": "accuracy", "role": "test", "source": "Paper 2020, Tab. 3",
                                     "notes": f"{XSS} <img src=x onerror=alert(2)>"} if name in ("alpha", XSS) else None)
            if name != safe:
                _rename(run, name)
            _curves(run)
    fake_run(runs, "partial", "9" * 16, fold=0, accuracy=0.8)
    db = root / "board" / "lb.duckdb"
    assert lb.ingest([runs], db) == 13
    boards = lb.rank(db)
    page = root / "board" / "index.html"
    page.write_text(lb.render_html(boards, db=db))
    return boards, page


@pytest.fixture(scope="module")
def browser(built):
    """One headless Chromium for the module, on the page, 360 px wide (a phone)."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.fail(f"the browser test needs {', '.join(missing)}: apt-get install chromium chromium-driver "
                    "(or set FERBENCH_CHROMIUM and FERBENCH_CHROMEDRIVER)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("the browser test needs selenium: pip install 'selenium>=4.15'")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--window-size=1280,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as env:
        env.setenv("SE_OFFLINE", "true")  # and Selenium Manager, were it ever asked, stays offline
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": True})
        driver.get(built[1].as_uri())
        yield driver
    finally:
        driver.quit()


def _errors(driver) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def _entries_table(driver):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, "table[id$='-ranked-1-entries']")


def _column(table, header: str) -> int:
    from selenium.webdriver.common.by import By

    heads = [th.text for th in table.find_elements(By.CSS_SELECTOR, "thead th")]
    return next(i for i, h in enumerate(heads) if h.startswith(header))


def _rows(driver, table) -> list[list[str]]:
    """The visible rows' cells (textContent: also what is scrolled out of view)."""
    return driver.execute_script(
        "return Array.from(arguments[0].tBodies[0].rows).filter(r => !r.hidden)"
        ".map(r => Array.from(r.cells).map(c => c.textContent))", table)


def test_the_page_loads_without_console_errors(browser, built):
    boards, _ = built
    assert browser.title == "ferbench leaderboard"
    assert _errors(browser) == []
    assert browser.execute_script("return [window.innerWidth, document.documentElement.clientWidth]") == [360, 360]
    ranked, partial = boards
    assert [b.section for b in boards] == ["ranked", "partial"] and len(ranked.entries) == 4
    text = browser.execute_script("return document.body.textContent")
    assert "Method: " in text and "paired cluster bootstrap" in text and "B=1000" in text
    assert "Partial entries (unranked)" in text and "partial 1/3 folds" in text and "± —" in text
    assert "Baselines on the same runs" in text and "Reported vs measured" in text


def test_sorting_a_column_reorders_whole_rows(browser, built):
    from selenium.webdriver.common.by import By

    boards, _ = built
    mean_of = {" = ".join(e["names"]): e["mean"] for e in boards[0].entries}
    table = _entries_table(browser)
    col, entry = _column(table, "Balanced accuracy (%)"), _column(table, "Entry")
    button = table.find_elements(By.CSS_SELECTOR, "thead th button")[col]
    for direction in ("ascending", "descending"):
        browser.execute_script("arguments[0].click()", button)
        rows = _rows(browser, table)
        names = [r[entry] for r in rows]
        means = [float(r[col].split(" ± ")[0]) for r in rows]
        assert means == sorted(means, reverse=direction == "descending")
        assert names == sorted(mean_of, key=mean_of.get, reverse=direction == "descending")
        assert [round(100 * mean_of[n], 2) for n in names] == means  # each row moved whole
        assert table.find_elements(By.CSS_SELECTOR, "thead th")[col].get_attribute("aria-sort") == direction
    runs = _column(table, "Runs")  # numeric-aware: "12 (…)" after "3 (…)" would fail a text sort; here all equal
    browser.execute_script("arguments[0].click()", table.find_elements(By.CSS_SELECTOR, "thead th button")[runs])
    assert len(_rows(browser, table)) == 4
    browser.execute_script("arguments[0].click()", table.find_elements(By.CSS_SELECTOR, "thead th button")[entry])
    names = [r[entry] for r in _rows(browser, table)]
    assert names == sorted(names, key=str.lower)
    assert _errors(browser) == []


def test_the_filter_box_hides_rows_that_do_not_match(browser):
    from selenium.webdriver.common.by import By

    table = _entries_table(browser)
    box = browser.find_element(By.CSS_SELECTOR, f"input.filter[data-for='{table.get_attribute('id')}']")
    browser.execute_script("arguments[0].scrollIntoView()", box)
    box.send_keys("BETA")
    rows = _rows(browser, table)
    assert len(rows) == 1 and "beta" in rows[0]
    hidden = [tr for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr") if not tr.is_displayed()]
    assert len(hidden) == 3 and "1 of 4 rows shown" in box.find_element(By.XPATH, "..").text
    box.clear()
    box.send_keys("script>")
    assert [r for r in _rows(browser, table) if XSS in r] and len(_rows(browser, table)) == 1
    browser.execute_script("arguments[0].value = ''; arguments[0].dispatchEvent(new Event('input'))", box)
    assert len(_rows(browser, table)) == 4
    assert _errors(browser) == []


_CLIPPED = """
document.querySelectorAll('details').forEach(d => { d.open = true; });
const vw = document.documentElement.clientWidth, bad = [];
const where = el => el.tagName + ':' + el.textContent.trim().slice(0, 40);
for (const cell of document.querySelectorAll('td, th')) {
  const box = cell.closest('.scroll');
  if (!box) { bad.push('outside a scroll container: ' + where(cell)); continue; }
  const r = cell.getBoundingClientRect(), b = box.getBoundingClientRect();
  if (r.width === 0) continue;
  if (r.right - b.left + box.scrollLeft > box.scrollWidth + 1) bad.push('past its container: ' + where(cell));
  if (cell.scrollWidth > cell.clientWidth + 1) bad.push('content clipped: ' + where(cell));
}
for (const el of document.body.querySelectorAll('*')) {
  if (el.closest('.scroll') && !el.classList.contains('scroll')) continue;
  const r = el.getBoundingClientRect();
  if (r.width > 0 && (r.right > vw + 1 || r.left < -1)) bad.push('past the viewport (' + vw + ' px): ' + where(el));
}
const doc = document.documentElement;
if (doc.scrollWidth > doc.clientWidth) bad.push('document overflows: ' + doc.scrollWidth + ' > ' + doc.clientWidth);
return [bad, document.querySelectorAll('td').length];
"""


def test_nothing_is_clipped_at_360_px_nor_on_a_wide_screen(browser):
    bad, cells = browser.execute_script(_CLIPPED)
    assert bad == [] and cells > 100
    narrow = browser.execute_script("return Array.from(document.querySelectorAll('.scroll'))"
                                    ".filter(s => s.scrollWidth > s.clientWidth).length")
    assert narrow > 0  # the wide tables do scroll, inside their own container
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                            {"width": 1600, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    try:
        bad, _ = browser.execute_script(_CLIPPED)
        assert bad == []
    finally:
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                {"width": 360, "height": 740, "deviceScaleFactor": 1, "mobile": True})
    assert _errors(browser) == []


def test_a_script_recipe_name_is_text_and_never_runs(browser, built):
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018 — an executed alert(1) / alert(2) would be open
    assert browser.execute_script("return document.scripts.length") == 1  # only the page's own
    assert browser.execute_script("return document.querySelectorAll('img:not(.curves)').length") == 0
    names = [r[_column(_entries_table(browser), "Entry")] for r in _rows(browser, _entries_table(browser))]
    assert XSS in names
    source = built[1].read_text()
    assert XSS not in source and "&lt;script&gt;alert(1)&lt;/script&gt;" in source
    assert "<img src=x" not in source
    assert _errors(browser) == []


def test_the_csv_download_is_there_and_parses(browser, built):
    from selenium.webdriver.common.by import By

    boards, _ = built
    link = browser.find_element(By.CSS_SELECTOR, "a.csv")
    href, name = link.get_attribute("href"), link.get_attribute("download")
    assert name.endswith(".csv") and href.startswith("data:text/csv")
    fetched = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => r.text()).then(done, e => done('ERROR ' + e))", href)
    assert fetched == urllib.parse.unquote(href.split(",", 1)[1])
    rows = list(csv.DictReader(io.StringIO(fetched)))
    assert list(rows[0]) == list(CSV_FIELDS)
    entries = [r for r in rows if r["system"] == "model"]
    assert len(entries) == 5 and len([r for r in rows if r["section"] == "baseline"]) == 2
    by_name = {r["entry"]: r for r in entries}
    assert XSS in by_name and LONG in by_name
    for e in boards[0].entries:
        row = by_name[e["names"][0]]
        assert float(row["mean"]) == pytest.approx(e["mean"]) and row["rank"] == str(e["rank"])
        assert row["section"] == "ranked" and float(row["ci_lo"]) <= float(row["mean"]) <= float(row["ci_hi"])
    assert by_name["partial"]["section"] == "partial" and by_name["partial"]["std"] == ""


def test_the_drill_down_shows_every_view_of_an_entry(browser):
    from selenium.webdriver.common.by import By

    alpha = next(d for d in browser.find_elements(By.CSS_SELECTOR, "details")
                 if "alpha" in d.find_element(By.TAG_NAME, "summary").text)
    text = alpha.get_attribute("textContent")
    for part in ("Per source dataset", "otherset", "toyfer", "Per class", "happiness", "Per fold", "majority",
                 "Confusion matrix", "row share: 0%", "Training curves", "1.23M", "imagenet-1k", "c" * 64,
                 "test cpu", "0.1.0", "0" * 40, "Recipe hash"):
        assert part in text, part
    assert alpha.find_elements(By.CSS_SELECTOR, "img.curves")
    width = browser.execute_script("return arguments[0].querySelector('img.curves').naturalWidth", alpha)
    assert width > 100  # the PNG drawn from curves.csv decodes
    assert _errors(browser) == []


def test_without_a_database_the_page_still_renders(built):
    boards, _ = built
    page = lb.render(boards, "html")
    assert page.startswith("<!doctype html>") and "Confusion matrix" in page and "Per fold" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and XSS not in page
    assert lb.render([], "html").count("No results") == 1
