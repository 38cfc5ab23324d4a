"""The API on the real server: `/docs` renders offline in headless Chromium, and concurrent answers
(encoded in batches) equal the answers asked one at a time.

Starts `python app.py` on a free loopback port (own index folder), as tests/test_browser.py does.
"""

from __future__ import annotations

import json
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from assistant.answer import DISCLAIMER
from app_server import running_app
from test_browser import TIMEOUT_MS, browser  # noqa: F401  (the browser fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.integration]

QUESTIONS = [
    "Which magnesium form is best for sleep?",
    "What foods are high in magnesium?",
    "How does magnesium help prevent calcification?",
    "Who wrote Pride and Prejudice?",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with running_app(tmp_path_factory.mktemp("api-app")) as running:
        yield running


def post_answer(url: str, question: str) -> dict:
    request = urllib.request.Request(url + "v1/answers", data=json.dumps({"question": question}).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_docs_page_renders_offline_and_its_form_answers(browser, server):  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    requests, problems = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.goto(server.url + "docs")
    page.wait_for_selector("section.op >> nth=1")
    assert "/v1/answers" in page.inner_text("#api") and "/v1/documents" in page.inner_text("#api")
    page.click("section.op button")
    page.wait_for_selector("pre.out:text-matches('^200 ')")  # not wait_for_function: the page's CSP forbids eval
    assert DISCLAIMER in page.inner_text("pre.out")
    context.close()
    assert {urlsplit(url).hostname for url in requests} == {"127.0.0.1"}, requests
    assert not problems, problems  # a blocked script or a CSP violation would show here


def test_concurrent_answers_equal_answers_asked_one_at_a_time(server):
    alone = [post_answer(server.url, q) for q in QUESTIONS]
    with ThreadPoolExecutor(len(QUESTIONS) * 2) as pool:
        together = list(pool.map(lambda q: post_answer(server.url, q), QUESTIONS * 2))
    assert together == alone * 2


def test_the_server_stops_its_encode_batcher_on_a_graceful_stop(tmp_path):
    with running_app(tmp_path) as running:
        assert post_answer(running.url, QUESTIONS[0])["disclaimer"] == DISCLAIMER
    assert "encode batcher stopped: 1 questions in 1 batches" in running.log(), running.log()[-2000:]
