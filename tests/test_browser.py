"""The chat in headless Chromium: answers with citations, refusals, markup shown as text, offline page.

Starts `python app.py` on a free loopback port (own index folder) and drives Debian's chromium
through Playwright (`/usr/bin/chromium`, or `CHROMIUM_PATH`). Saves a screenshot of an answered
question to the test's tmp folder; with `SAVE_SCREENSHOT=1`, also to docs/screenshot.png.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from assistant.answer import DISCLAIMER, NOT_COVERED
from app_server import ROOT, running_app

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration]

from playwright import sync_api  # noqa: E402  (a test extra: installed by scripts/install.sh test)

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT_MS = 60_000

BOT = "#chat .message-row.bot-row"
USER = "#chat .message-row.user-row"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("browser-app")) as running:
        yield running


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():  # a failure, not a skip: CI installs it, and a skip would hide that it didn't
        pytest.fail(f"no chromium at {CHROMIUM}: apt-get install chromium, or set CHROMIUM_PATH")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser, server):
    """A fresh tab on the app that records every request and every dialog (alert, confirm…)."""
    context = browser.new_context(viewport={"width": 1360, "height": 940})
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    tab.requests, tab.dialogs = [], []
    tab.on("request", lambda request: tab.requests.append(request.url))
    tab.on("dialog", lambda dialog: (tab.dialogs.append(dialog.message), dialog.dismiss()))
    tab.goto(server.url)
    tab.wait_for_selector("#question textarea")
    yield tab
    context.close()


def ask(page, question: str) -> None:
    """Type and send `question`, then wait until its answer is complete (it ends with the disclaimer)."""
    answers = page.locator(BOT).count()
    page.fill("#question textarea", question)
    page.keyboard.press("Enter")
    wait_for_answer(page, answers + 1)


def wait_for_answer(page, count: int) -> None:
    """Wait until answer number `count` is complete: every streamed piece already ends with the
    disclaimer, so "complete" also means its text has stopped changing for a second."""
    page.wait_for_function(
        """([selector, count, disclaimer]) => {
            const rows = document.querySelectorAll(selector);
            if (rows.length < count) return false;
            const text = rows[count - 1].innerText;
            if (!text.includes(disclaimer) || text.includes('Searching the document')) return false;
            const now = Date.now();
            if (window.__answerText !== text) { window.__answerText = text; window.__answerSince = now; return false; }
            return now - window.__answerSince >= 1000;
        }""",
        arg=[BOT, count, DISCLAIMER],
        polling=200,
    )


def test_answer_shows_citations_highlighted_passage_and_disclaimer(page, server, tmp_path):
    assert page.locator("#disclaimer").inner_text().strip() == DISCLAIMER
    ask(page, "Which magnesium form is best for sleep?")
    answer = page.locator(BOT).last
    text = answer.inner_text()
    assert "Magnesium Glycinate" in text and DISCLAIMER in text
    citations = answer.locator("details.citation")
    count = citations.count()
    assert count >= 1 and all(f"[{n}]" in text for n in range(1, count + 1))
    first = citations.first
    assert "calcium-and-magnesium.txt" in first.locator("summary").inner_text()
    assert "Magnesium Supplementation and Forms" in first.locator("summary").inner_text()
    mark = first.locator("mark").first  # one per table cell of the quoted row
    assert not mark.is_visible()  # collapsed until the reader opens it
    first.locator("summary").click()
    assert mark.is_visible() and "Magnesium Glycinate" in mark.inner_text()
    assert first.locator(".passage th").first.inner_text() == "Magnesium Form"  # the context: its table's header

    corpus_marks = page.locator("#corpus mark")  # one per table cell; each citation's number once
    assert len(set(corpus_marks.evaluate_all("marks => marks.map(m => m.dataset.n)"))) == count
    assert "Magnesium Glycinate" in corpus_marks.first.inner_text()
    page.wait_for_function("() => document.querySelector('#corpus').scrollTop > 0")  # scrolled to the first one
    assert corpus_marks.first.is_visible()

    page.wait_for_timeout(300)  # let the chat's own autoscroll settle, then put the question on top
    page.locator(USER).last.evaluate(
        """row => {
            const scrolls = e => e.scrollHeight > e.clientHeight && /auto|scroll/.test(getComputedStyle(e).overflowY);
            let box = row.parentElement;
            while (box && !scrolls(box)) box = box.parentElement;
            if (box) box.scrollTop += row.getBoundingClientRect().top - box.getBoundingClientRect().top;
        }"""
    )
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(tmp_path / "screenshot.png"))
    if os.environ.get("SAVE_SCREENSHOT") == "1":
        page.screenshot(path=str(ROOT / "docs" / "screenshot.png"))
    external = [u for u in page.requests if not u.startswith((server.url, "data:", "blob:"))]
    assert external == [], f"the page fetched from outside the app: {external}"


def test_example_question_is_answered_and_out_of_scope_question_refused(page):
    page.locator("#examples button").first.click()  # the examples come from the corpus's headings
    wait_for_answer(page, 1)
    assert page.locator(f"{BOT} details.citation").count() >= 1
    ask(page, "Who wrote Pride and Prejudice?")
    answer = page.locator(BOT).last.inner_text()
    assert NOT_COVERED in answer and DISCLAIMER in answer
    assert page.locator(BOT).last.locator("details.citation").count() == 0
    assert page.locator(USER).last.inner_text().strip() == "Who wrote Pride and Prejudice?"


def test_markup_in_a_question_is_shown_as_text_and_runs_nothing(page):
    question = "<script>alert(1)</script><img src=x onerror=alert(2)> **bold**"
    ask(page, question)
    assert page.locator(USER).last.inner_text().strip() == question
    assert page.locator("#chat script, #chat img[src='x'], #chat strong:text('bold')").count() == 0
    page.wait_for_timeout(500)  # give a script every chance to run
    assert page.dialogs == []
    assert DISCLAIMER in page.locator(BOT).last.inner_text()


def test_follow_up_retry_and_clear(page):
    ask(page, "What is whitlockite?")
    ask(page, "How does it form?")
    assert page.locator(USER).count() == 2
    page.click("#retry")
    wait_for_answer(page, 2)
    assert page.locator(USER).count() == 2 and page.locator(BOT).count() == 2
    assert page.locator(USER).last.inner_text().strip() == "How does it form?"
    page.click("#clear")
    page.wait_for_function(f"() => document.querySelectorAll('{USER}').length === 0")
    # The documents panel is another component of the same update, and may be painted a frame later.
    page.wait_for_function("() => document.querySelectorAll('#corpus mark').length === 0", timeout=10_000)


def test_empty_question_gets_a_message_with_the_disclaimer(page):
    page.click("#ask")
    wait_for_answer(page, 1)
    answer = page.locator(BOT).last.inner_text()
    assert "Question not answered" in answer and DISCLAIMER in answer


# --- hostile documents, oversized questions, rate limit and sign-in (issue 11) --------------------------

SELENIUM_MD = (
    "# Selenium facts\r\r![x](http://evil.example/x.png)\r\r[Click here for your personal dose]"
    "(https://evil.example/phish)\r\rend\n\nSelenium is a trace mineral found in Brazil nuts.\n"
)
#: A file NAME with blank lines and markup ('/' cannot be in a name; `https:evil.example` is a URL all the same).
HOSTILE_NAME = "notes\n\n![y](https:evil.example) [z](https:evil.example)\n\n.md"


def external_requests(page, server) -> list[str]:
    return [u for u in page.requests if not u.startswith((server.url, "data:", "blob:"))]


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory):
    """The app on a corpus whose heading and file name carry images and links (finding 1)."""
    work = tmp_path_factory.mktemp("hostile-app")
    corpus = work / "corpus"
    corpus.mkdir()
    (corpus / "s.md").write_bytes(SELENIUM_MD.encode("utf-8"))
    try:
        (corpus / HOSTILE_NAME).write_text("Zinc is a mineral found in oysters and pumpkin seeds.\n", encoding="utf-8")
        named = True
    except OSError:  # a file system that refuses such names: test_render covers the name's rendering
        named = False
    with running_app(work, env={"ASSISTANT_CORPUS_DIR": str(corpus)}) as running:
        running.hostile_name = named
        yield running


def test_a_hostile_document_loads_nothing_and_links_nowhere(browser, hostile_server):
    context = browser.new_context(viewport={"width": 1360, "height": 940})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.goto(hostile_server.url)
    page.wait_for_selector("#question textarea")
    ask(page, "Where is selenium found?")
    summary = page.locator(f"{BOT} details.citation summary").last.inner_text()
    assert "s.md" in summary and "![x](http://evil.example/x.png)" in summary  # shown as the text it is
    if hostile_server.hostile_name:
        ask(page, "Where is zinc found?")
        assert "![y](https:evil.example)" in page.locator(f"{BOT} details.citation summary").last.inner_text()
    for details in page.locator("#chat details.citation").all():
        details.locator("summary").click()
    page.wait_for_timeout(1000)  # give any image or prefetch every chance to be requested
    assert external_requests(page, hostile_server) == [], "the page fetched from outside the app"
    assert page.locator("a[href*='evil.example']").count() == 0
    assert page.locator("#chat img, #corpus img").count() == 0  # no image from a document or a file name
    hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
    assert all(h.startswith(hostile_server.url) for h in hrefs), hrefs  # no link but the app's own
    context.close()


def test_a_megabyte_question_is_refused_and_not_echoed(page, server):
    """Finding 2: a 1 MB question was streamed back (5 MB) before it was rejected."""
    page.fill("#question textarea", "x" * 1_000_000)
    page.keyboard.press("Enter")
    page.get_by_text("request too large").first.wait_for()
    assert page.locator(USER).count() == 0 and page.locator(BOT).count() == 0
    assert len(page.locator("#chat").inner_text()) < 5_000
    page.fill("#question textarea", "y" * 20_000)  # under the body limit, over the question limit
    page.keyboard.press("Enter")
    wait_for_answer(page, 1)
    assert "20,000 characters, not shown" in page.locator(USER).last.inner_text()
    assert "Question not answered" in page.locator(BOT).last.inner_text()
    assert "y" * 100 not in page.locator("#chat").inner_text()


PASSWORD = "a browser-test password"


@pytest.fixture(scope="module")
def guarded_server(tmp_path_factory):
    """The app with a user to sign in and a rate a test can reach: 2 requests at once, then 1 a minute."""
    from assistant.server.auth import hash_password

    env = {"ASSISTANT_USERS": f"reader:{hash_password(PASSWORD)}", "ASSISTANT_RATE_LIMIT": "1",
           "ASSISTANT_RATE_BURST": "2"}
    with running_app(tmp_path_factory.mktemp("guarded-app"), env=env) as running:
        yield running


def test_sign_in_then_busy_try_again_in_the_chat(browser, guarded_server):
    """Finding 6 (Gradio's sign-in page) and finding 4 (over the rate, the chat says when to try again)."""
    context = browser.new_context(viewport={"width": 1360, "height": 940})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.goto(guarded_server.url)
    page.locator("input[type=password]").wait_for()
    assert page.locator("#question textarea").count() == 0  # nothing of the app before signing in
    page.locator("input[type=text]").first.fill("reader")
    page.locator("input[type=password]").fill(PASSWORD)
    page.keyboard.press("Enter")  # the sign-in is the first request that counts
    page.wait_for_selector("#question textarea")
    ask(page, "What is whitlockite?")
    assert "whitlockite" in page.locator(BOT).last.inner_text().lower()
    ask(page, "How does it form?")  # over the rate now: answered in the chat, not as an error
    busy = page.locator(BOT).last.inner_text()
    assert "busy, try again in" in busy and DISCLAIMER in busy
    assert page.locator("#question textarea").input_value() == "How does it form?"  # still typed, to send again
    assert external_requests(page, guarded_server) == []
    context.close()
