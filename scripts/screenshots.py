"""Screenshots of the chat for the README: one answered question at desktop and phone size.

    python scripts/screenshots.py docs/screenshot.png docs/screenshot-phone.png

Starts `app.py` on a free loopback port (its own index folder, as the browser tests do), asks a
question whose answer quotes a table row and saves one screenshot per size, the answer at its
top. Needs Playwright and Debian's chromium (`/usr/bin/chromium`, or `CHROMIUM_PATH`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from app_server import running_app  # noqa: E402

QUESTION = "Which magnesium form is best for sleep?"
CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SIZES = [{"width": 1280, "height": 900}, {"width": 390, "height": 844}]


def shoot(url: str, viewport: dict[str, int], path: Path, browser) -> None:
    context = browser.new_context(viewport=viewport, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(url)
    page.wait_for_selector("#question textarea")
    page.fill("#question textarea", QUESTION)
    page.keyboard.press("Enter")
    page.wait_for_selector("#chat details.citation")
    page.wait_for_timeout(2500)  # the rest of the answer streams in; it stays at its top
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(path))
    context.close()


def main(paths: list[str]) -> None:
    from playwright import sync_api

    with tempfile.TemporaryDirectory() as work, running_app(Path(work)) as server:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for viewport, path in zip(SIZES, paths):
                shoot(server.url, viewport, Path(path), browser)
            browser.close()


if __name__ == "__main__":
    main(sys.argv[1:] or ["docs/screenshot.png", "docs/screenshot-phone.png"])
