"""The README's report screenshot: the shipped sample after a simulated month.

    python -m docs.make_report_screenshot [--out docs/report.png]

From the repository root, with the test extra installed (playwright) and the system's
Chromium (``/usr/bin/chromium``). A copy of the sample in a temporary folder goes
through a month of daily syncs while customers sign up, pay, log in and answer
(``tests.support.month``: seeded, so every run draws the same month), then
``sheetcrm report --html`` writes the file and Chromium photographs its top at a
phone's width. Nothing leaves the machine: every request but the file is aborted.
The picture starts at one flow's section and is cut to a few screens, so the PNG
stays under 300 KB.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

from tests.support.month import simulate_month

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 390, 2400  # a phone's width; the summary, payment's funnel, lift and A/B


def render(html: Path, out: Path, flow: str) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 900},
                                    device_scale_factor=1)
            url = html.as_uri()
            page.route("**/*", lambda r: r.continue_() if r.request.url == url else r.abort())
            page.goto(url)
            top = page.evaluate(f"document.querySelector('[data-flow=\"{flow}\"]')"
                                ".getBoundingClientRect().top + window.scrollY")
            page.screenshot(path=str(out), full_page=True,
                            clip={"x": 0, "y": max(0, top - 8), "width": WIDTH, "height": HEIGHT})
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--flow", default="payment", help="the flow the picture starts at")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        now = simulate_month(folder, days=args.days,
                             progress=lambda day: print(f"day {day + 1}", file=sys.stderr))
        from sheetcrm.cli import main as sheetcrm

        cwd = Path.cwd()
        os.chdir(folder)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                sheetcrm(["--now", now.strftime("%Y-%m-%dT%H:%M"), "report", "--html",
                          "report.html"])
        except SystemExit as exc:
            if exc.code not in (0, None):
                return int(exc.code) if isinstance(exc.code, int) else 1
        finally:
            os.chdir(cwd)
        render(folder / "report.html", args.out, args.flow)
    print(f"{args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
