"""A person opts out in a real browser: headless Chromium (the system's ``chromium``
package, driven by playwright) opens the link of an ad a real ``sync`` wrote, reads the
Korean page, presses its button, sees the confirmation, and undoes it.

``.ci/run`` installs Chromium when it is missing; elsewhere the test is skipped
without it (and fails under CI, where it must run).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.endpoint import (
    ads,
    copy_of,
    https_target,
    local,
    opt_events,
    serving,
    synced_sample,
)

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
SOHEE = "sohee.han@example.com"

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                                reason="needs the chromium package (apt-get install chromium)")


def test_a_person_opts_out_with_the_pages_button_and_can_undo_it(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    folder = copy_of(synced_sample(tmp_path / "synced"), tmp_path / "sample")
    with serving(folder) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=FLAGS, timeout=60_000)
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            page.goto(local(base, https_target(ads(folder)[SOHEE])))
            assert page.locator("h1").inner_text() == "광고 메일 수신 거부"
            assert "소담 클래스에서 보내는 광고 메일" in page.locator("main").inner_text()
            assert opt_events(folder) == []  # opening the page changes nothing

            with page.expect_navigation():
                page.get_by_role("button", name="수신 거부하기").click()
            assert page.locator("h1").inner_text() == "수신 거부가 완료되었습니다"
            assert [kind for kind, _, _ in opt_events(folder)] == ["opt_out"]

            with page.expect_navigation():
                page.get_by_role("button", name="수신 거부 취소").click()
            assert page.locator("h1").inner_text() == "수신 거부를 취소했습니다"
            assert [kind for kind, _, _ in opt_events(folder)] == ["opt_out", "opt_in"]
            assert page.context.cookies() == []  # no cookie, no login
        finally:
            browser.close()
