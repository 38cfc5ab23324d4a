"""Uploading a PDF in headless Chromium: indexed, answered from, its page shown highlighted, restricted to, removed.

Its own `app.py` on a free loopback port (own index and uploads folders, see
tests/app_server.py) and the chromium of test_browser.py. With `SAVE_SCREENSHOT=1`, the
opened citation with its highlighted page is saved as docs/screenshot-pdf.png.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from assistant.answer import DISCLAIMER
from app_server import ROOT, running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration]

from playwright import sync_api  # noqa: E402  (a test extra)

from test_browser import BOT, browser, wait_for_answer  # noqa: E402,F401  (the browser and the answer wait are shared)

TIMEOUT_MS = 120_000
NAME = "selenium-leaflet.pdf"

PAGE_ONE = [
    ("Helvetica-Bold", 18, "Selenium and the thyroid"),
    ("", 0, ""),
    ("Helvetica", 11, "Selenium is a trace mineral that the thyroid gland needs to make its hormones."),
    ("Helvetica", 11, "Brazil nuts are the richest food source of selenium: one or two nuts a day"),
    ("Helvetica", 11, "cover what most adults need."),
    ("", 0, ""),
    ("Helvetica", 11, "Fish, eggs and whole grains also provide selenium in smaller amounts."),
]
PAGE_TWO = [
    ("Helvetica-Bold", 14, "Too much selenium"),
    ("Helvetica", 11, "Very high intakes of selenium can cause brittle hair and nails."),
]


def make_leaflet(path: Path) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    for lines in (PAGE_ONE, PAGE_TWO):
        y = 760
        for font, size, text in lines:
            if text:
                c.setFont(font, size)
                c.drawString(72, y, text)
            y -= 18 if text else 12
        c.showPage()
    c.save()
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("uploads-app"), env={"ASSISTANT_UPLOADS_ENABLED": "true"}) as running:
        yield running


def ask(page, question: str) -> sync_api.Locator:
    count = page.locator(BOT).count() + 1
    page.fill("#question textarea", question)
    page.keyboard.press("Enter")
    wait_for_answer(page, count)
    return page.locator(BOT).last


def choose(page, dropdown: str, option: str) -> None:
    """Pick `option` in a Gradio dropdown."""
    page.locator(f"{dropdown} input").click()
    page.locator("ul.option-list li", has_text=option).first.click()
    page.keyboard.press("Escape")


HIGHLIGHTED_PIXELS = """img => {
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(img, 0, 0);
    const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
    let yellow = 0;
    for (let i = 0; i < data.length; i += 4) {
        const [r, g, b] = [data[i], data[i + 1], data[i + 2]];
        if (r > 200 && g > 170 && b < r - 50) yellow++;
    }
    return yellow;
}"""


def test_upload_ask_see_the_page_restrict_and_remove(browser, server, tmp_path):
    leaflet = make_leaflet(tmp_path / NAME)
    context = browser.new_context(viewport={"width": 1360, "height": 940})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(server.url)
    page.wait_for_selector("#question textarea")

    page.locator("#upload input[type=file]").set_input_files(str(leaflet))
    status = page.locator("#upload-status")
    sync_api.expect(status).to_contain_text("Ready:", timeout=TIMEOUT_MS)
    assert "(PDF, 2 pages)" in status.inner_text() and DISCLAIMER in status.inner_text()
    assert f"uploads/{NAME}" in page.locator("#library-list").inner_text()
    assert not any(p.name == NAME for p in Path(server.log_path.parent).rglob("gradio*/**/*"))
    other = context.new_page()  # a tab opened later starts with the new list, without a refresh event
    other.goto(server.url)
    sync_api.expect(other.locator("#library-list")).to_contain_text(f"uploads/{NAME}")
    other.close()

    answer = ask(page, "Which food is the richest source of selenium?")
    assert "Brazil nuts" in answer.inner_text()
    citation = answer.locator("details.citation", has_text=f"uploads/{NAME}").first
    citation.locator("summary").click()
    assert "Brazil nuts" in citation.locator("mark").inner_text()
    figure = page.locator("#corpus figure.page-view").first
    sync_api.expect(figure).to_be_visible()
    assert f"uploads/{NAME} — page 1" in figure.locator("figcaption").inner_text()
    image = figure.locator("img")
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert image.evaluate(HIGHLIGHTED_PIXELS) > 500  # the quote's lines are filled in yellow
    page.screenshot(path=str(tmp_path / "screenshot-pdf.png"))
    if os.environ.get("SAVE_SCREENSHOT") == "1":
        shutil.copy(tmp_path / "screenshot-pdf.png", ROOT / "docs" / "screenshot-pdf.png")

    choose(page, "#scope", f"uploads/{NAME}")
    restricted = ask(page, "Which magnesium form is best for sleep?")
    sources = restricted.locator("details.citation summary").all_inner_texts()
    assert all(f"uploads/{NAME}" in s for s in sources), sources  # only the chosen document answers

    choose(page, "#removable", f"uploads/{NAME}")
    page.click("#remove")
    sync_api.expect(status).to_contain_text("Removed", timeout=TIMEOUT_MS)
    sync_api.expect(page.locator("#library-list")).not_to_contain_text(NAME)
    assert not (server.log_path.parent / "uploads" / NAME).exists()
    assert all(r.startswith(server.url) or r.startswith("data:") for r in requests)  # nothing from elsewhere
    context.close()
