"""The chat laid out for reading (issue 14), in headless Chromium at desktop and phone sizes.

One app server for the module, on a second small corpus (tests/fixtures/corpus_md: headings, a
list, a table), so the examples must come from it and not from the default corpus. Each test runs
at 1280×900 and 390×844.
"""

from __future__ import annotations

import pytest

from app_server import running_app
from conftest import FIXTURES
from test_browser import BOT, TIMEOUT_MS, USER, ask, browser  # noqa: F401  (browser: the module's Chromium)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration]

SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}

#: Where an element is, and whether it lies inside the chat's scrolling box (or the window).
IN_VIEW = """(element) => {
    const scrolls = e => e.scrollHeight > e.clientHeight && /auto|scroll/.test(getComputedStyle(e).overflowY);
    let box = element.parentElement;
    while (box && !scrolls(box)) box = box.parentElement;
    const r = element.getBoundingClientRect();
    const b = box ? box.getBoundingClientRect() : {top: 0, bottom: window.innerHeight};
    return r.top >= Math.max(b.top, 0) - 1 && r.top < Math.min(b.bottom, window.innerHeight) - 10;
}"""


@pytest.fixture(scope="module")
def iron_server(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("iron-app"), env={"ASSISTANT_CORPUS_DIR": str(FIXTURES / "corpus_md")}) as running:
        yield running


@pytest.fixture(params=sorted(SIZES))
def page(request, browser, iron_server):  # noqa: F811
    context = browser.new_context(viewport=SIZES[request.param])
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.size = request.param
    tab.goto(iron_server.url)
    tab.wait_for_selector("#question textarea")
    yield tab
    context.close()


def in_view(locator) -> bool:
    return locator.evaluate(IN_VIEW)


def bottom(locator) -> float:
    box = locator.bounding_box()
    return box["y"] + box["height"]


def test_first_screen_has_the_question_box_and_this_corpus_examples(page):
    question = page.get_by_role("textbox", name="Your question")
    assert question.count() == 1 and page.evaluate("() => document.documentElement.lang") == "en"
    examples = [b.inner_text().strip() for b in page.locator("#examples button").all()]
    assert examples == ["What about food sources?", "What about absorption?"]  # from iron.md's headings
    height = page.viewport_size["height"]
    assert bottom(question) <= height  # in view without scrolling, phone included
    assert bottom(page.locator("#examples button").first) <= height or page.size == "phone"
    assert "right" not in page.locator("h1 + p, .prose").first.inner_text()
    for target in page.locator("#ask, #retry, #clear, #examples button").all():
        assert target.bounding_box()["height"] >= 44
    if page.size == "phone":  # the documents come below the chat, not beside it
        assert page.locator("#corpus").bounding_box()["y"] > bottom(page.locator("#chat"))


def test_a_table_row_comes_with_its_header_and_a_list_with_every_bullet(page):
    ask(page, "Where is haem iron found?")
    quote = page.locator(f"{BOT} .quote").last
    assert [th.inner_text().strip() for th in quote.locator("th").all()] == ["Form", "Absorbed", "Found in"]
    cells = [td.inner_text().strip() for td in quote.locator("td").all()]
    # The answering row, as cells under the header; a neighbouring row the answer also quotes follows it.
    assert cells[:3] in (["Haem iron", "Well", "Meat and fish"], ["Haem iron", "Well", "Meat and fish[1]"])
    assert len(cells) % 3 == 0 and cells[-1].endswith("[1]")
    assert "|" not in quote.inner_text()
    ask(page, "What foods contain iron?")
    items = page.locator(f"{BOT} .quote").last.locator("li")
    assert [li.inner_text().strip() for li in items.all()] == [
        "Red meat and liver", "Beans, lentils and tofu", "Fortified breakfast cereals[1]"]
    assert all(li.evaluate("e => getComputedStyle(e).display") == "list-item" for li in items.all())  # bullets shown
    summary = page.locator(f"{BOT} details.citation summary").last  # the Documents panel: headings, no markers
    assert "Food sources" in page.locator("#corpus h4").all_inner_texts()
    assert "---" not in page.locator("#corpus").inner_text() and "# Iron" not in page.locator("#corpus").inner_text()

    assert summary.evaluate("s => s.tabIndex") >= 0 and summary.bounding_box()["height"] >= 44  # Tab reaches it
    summary.focus()  # keyboard: a citation opens with Enter, no mouse
    page.keyboard.press("Enter")
    assert summary.evaluate("s => s.parentElement.open")
    assert page.locator(f"{BOT} details.citation").last.locator("mark").first.is_visible()


def test_a_long_answer_opens_at_its_top_with_the_notice_in_view(page):
    ask(page, "What foods contain iron?")
    ask(page, "How much iron from red meat should I eat each day?")
    answer = page.locator(BOT).last
    notice = answer.locator(".notice")
    assert notice.count() == 1
    question = page.locator(USER).last
    for _ in range(30):  # the chat scrolls after it renders: give it up to 3 s on a loaded machine
        if in_view(question) and in_view(notice):
            break
        page.wait_for_timeout(100)
    assert in_view(question) and in_view(notice), "the answer opened scrolled past its notice"
    label = page.locator("#chat [data-testid='block-label']")
    assert label.count() == 0 or not label.first.is_visible()  # no floating label over the messages
