"""The chat's own colours meet WCAG 2.1 AA contrast (issue 14): computed from `app.CSS`, no browser.

axe-core is not available offline, so the check is the WCAG formula itself (relative luminance,
https://www.w3.org/TR/WCAG21/#dfn-contrast-ratio), checked first on hand-worked pairs.
"""

from __future__ import annotations

import re

import pytest

import app

AA_TEXT = 4.5
#: What the panels are drawn on when a rule gives a text colour only (the default light theme).
PAGE_BACKGROUND = "#ffffff"


def luminance(colour: str) -> float:
    channels = [int(colour.lstrip("#")[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted([luminance(a), luminance(b)], reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_formula_on_hand_worked_pairs():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)  # the classic just-failing grey


def css_colour_pairs(css: str) -> list[tuple[str, str, str]]:
    """(selector, text colour, background) of every rule that sets a text colour."""
    pairs = []
    for selector, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        text = re.search(r"(?<![-\w])color:\s*(#[0-9a-fA-F]{6})", body)
        background = re.search(r"background(?:-color)?:\s*(#[0-9a-fA-F]{6})", body)
        if text:
            pairs.append((selector.strip(), text.group(1), background.group(1) if background else PAGE_BACKGROUND))
    return pairs


def test_highlights_notices_and_the_disclaimer_meet_aa():
    pairs = css_colour_pairs(app.CSS)
    selectors = " ".join(selector for selector, _, _ in pairs)
    for needed in ("mark", ".notice", "#disclaimer", "th"):  # every coloured thing a reader must read
        assert needed in selectors, f"no colour pair for {needed}"
    failing = [(s, t, b, round(contrast(t, b), 2)) for s, t, b in pairs if contrast(t, b) < AA_TEXT]
    assert failing == [], failing
