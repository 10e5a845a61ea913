"""The HTML report in a real browser: headless Chromium (the system's ``chromium``
package, driven by playwright) opens the file a real ``report --html`` wrote after a
simulated month of the sample, with every request but the file itself aborted.

Every chart must render with a size and drawn marks, the Korean labels must be text
(not pictures), nothing may leave the file, and the page must fit a phone's width.
Screenshots are kept under pytest's temporary folder (``tmp_path``, printed on
failure) as the test's artifacts: ``report-phone.png`` and ``report-desktop.png``.

``.ci/run`` installs Chromium when it is missing; elsewhere the test is skipped
without it (and fails under CI, where it must run).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.support.month import simulate_month
from tests.support.sample import korean_report

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                                reason="needs the chromium package (apt-get install chromium)")

CHARTS = """() => [...document.querySelectorAll('figure[data-chart]')].map(f => {
  const svg = f.querySelector('svg'); const box = svg.getBoundingClientRect();
  const marks = [...svg.querySelectorAll('rect, line, circle')].filter(m => {
    const b = m.getBoundingClientRect(); return b.width > 0 || b.height > 0; });
  return {kind: f.dataset.chart, width: box.width, height: box.height, marks: marks.length,
          text: svg.textContent}; })"""


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("month")
    now = simulate_month(folder, days=30)
    korean_report(folder / "config.toml")
    from sheetcrm.cli import main

    cwd = Path.cwd()
    os.chdir(folder)
    try:
        with pytest.raises(SystemExit) as exit_:
            main(["--now", now.strftime("%Y-%m-%dT%H:%M"), "report", "--html", "report.html"])
    finally:
        os.chdir(cwd)
    assert exit_.value.code in (0, None)
    return folder / "report.html"


def _open(playwright: Any, path: Path, width: int, requests: list[str]) -> tuple[Any, Any]:
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                         args=FLAGS, timeout=60_000)
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(20_000)
    url = path.as_uri()

    def route(r: Any) -> None:
        requests.append(r.request.url)
        if r.request.url == url:
            r.continue_()
        else:
            r.abort()

    page.route("**/*", route)
    page.goto(url)
    page.wait_for_load_state("load")
    return browser, page


def test_the_report_renders_every_chart_offline_in_korean_and_fits_a_phone(
        report_file: Path, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as playwright:
        browser, page = _open(playwright, report_file, 390, requests)
        try:
            charts = page.evaluate(CHARTS)
            kinds = {c["kind"] for c in charts}
            assert {"funnel", "time", "lift", "ab", "heard", "daily", "held"} <= kinds
            for chart in charts:
                assert chart["width"] > 200 and chart["height"] > 20, chart
                assert chart["marks"] > 0, chart
            # Korean labels are text the browser lays out, in the charts and around them.
            funnel = next(c for c in charts if c["kind"] == "funnel")
            assert "진입" in funnel["text"] and "1단계 발송" in funnel["text"]
            text = page.locator("main").inner_text()
            for label in ("sheetcrm 리포트", "퍼널: 진입부터 결과까지", "대조군 대비 효과",
                          "A/B 테스트: 2단계", "일별 발송 (채널·종류별)", "보류된 발송 (사유별)",
                          "열람 (신뢰할 수 없음)", "매출 (결제 금액)"):
                assert label in text, label
            assert "표본이 부족합니다" in text  # the too-early verdict, in plain words
            assert page.evaluate("document.documentElement.scrollWidth") <= 390
            page.screenshot(path=str(tmp_path / "report-phone.png"), full_page=True)
            assert page.evaluate("document.scripts.length") == 0
        finally:
            browser.close()
        browser, page = _open(playwright, report_file, 1280, requests)
        try:
            page.screenshot(path=str(tmp_path / "report-desktop.png"), full_page=True)
        finally:
            browser.close()
    assert requests == [report_file.as_uri()] * 2  # only the file itself, once per open
    assert (tmp_path / "report-phone.png").stat().st_size > 10_000
