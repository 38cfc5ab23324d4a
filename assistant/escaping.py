"""Escaping by output context: text from users and documents made inert for where it lands.

One function per context, line breaks of every convention included: `escape_markdown` (a
Markdown message), `escape_html` (HTML text), `escape_html_line` (HTML that must stay on one
line, inside a Markdown message), `escape_attribute` (a double-quoted attribute value) and
`escape_terminal` (a terminal). Pure functions on strings, importing nothing of the project, so
every stage that shows text (`render` for the chat, `cli` for the terminal) uses the same ones.

Example:
    >>> escape_html("<b>${x}</b>")
    '&lt;b&gt;&#36;&#123;x&#125;&lt;/b&gt;'
"""

from __future__ import annotations

import html
import re

#: Characters after which a new line starts, in every convention: CR LF, CR and LF (what Markdown
#: parsers know), VT, FF, the file/group/record separators, NEL and the Unicode line and paragraph
#: separators (which JavaScript regular expressions treat as line ends). The same set as `str.splitlines`.
LINE_BREAK = re.compile("\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")

# Characters that start inline Markdown (emphasis, code, links, tables, strikethrough, maths) anywhere
# in a line, and the `:` and `@` that GitHub-flavoured Markdown turns into links on their own
# ("https://…", "a@b.example"). `<`, `>` and `&` are handled by html.escape, before these are backslash-escaped.
_INLINE_MARKDOWN = re.compile(r"([\\`*_\[\]|~$:@])")
# A dot between two word characters: where bare domains ("www.evil.example", "evil.com") are recognised.
_WORD_DOT = re.compile(r"(?<=\w)\.(?=\w)")
# Block syntax that only counts at the start of a line: headings, list bullets, setext underlines,
# and the "1." / "1)" of ordered lists. Applied to one line at a time.
_LINE_START_MARKER = re.compile(r"^([ \t]*)([#+\-=])")
_LINE_START_NUMBER = re.compile(r"^([ \t]*\d+)([.)])")
_LEADING_BLANKS = re.compile(r"^[ \t]+")

# Template syntax of HTML components ("${…}", "{{…}}"): harmless as entities, risky as characters.
_TEMPLATE_CHARS = str.maketrans({"$": "&#36;", "{": "&#123;", "}": "&#125;", "`": "&#96;"})
# What a terminal acts on rather than shows: C0 controls but tab and newline, DEL, C1 controls (0x9b is a
# one-byte CSI), and the bidirectional overrides and isolates that reorder what is shown ("Trojan Source").
_TERMINAL_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x1f\x7f-\x84\x86-\x9f\u202a-\u202e\u2066-\u2069]")


def escape_html(text: str) -> str:
    """`text` as inert HTML text: tags, entities and template syntax all shown as the characters they are.

    For HTML that is not inside Markdown (the documents panel), where a line break is only a line
    break. Beyond `html.escape`, `$ { } \\`` become entities too, because Gradio's HTML component runs
    its value through a template engine; a document saying `${…}` or `{{…}}` must stay text.
    """
    return html.escape(text, quote=True).translate(_TEMPLATE_CHARS)


def escape_html_line(text: str, *, line_break: str = " ") -> str:
    """`text` as inert HTML on one line, each line break (any convention) replaced by `line_break`.

    For HTML inside a Markdown message (a citation's `<details>` block): there a blank line, or a
    bare `\\r\\r`, ends the HTML block and whatever follows is read as Markdown, so a document could
    add images and links. Names (file, section) are one line, so their breaks become spaces;
    passages keep theirs as `<br>`.
    """
    return LINE_BREAK.sub(line_break, escape_html(text))


def escape_attribute(text: str) -> str:
    """`text` as the value of a double-quoted HTML attribute, on one line (line breaks become spaces).

    Quotes become entities so the value cannot end early and add attributes (`" onmouseover=…`);
    the value is one line for the same reason as `escape_html_line`.
    """
    return escape_html_line(text, line_break=" ")


def escape_markdown(text: str) -> str:
    """`text` as Markdown that renders to exactly these characters, with no markup, no HTML and no link.

    HTML-escaping removes tags; backslash-escaping the inline Markdown characters and the
    line-start block markers keeps a quote from a table (`| a | b |`) or a list (`- item`)
    from turning into a table or a list; escaping `:`, `@` and dots inside words stops bare URLs,
    domains and e-mail addresses from becoming links. Every line-break convention starts a new
    line here (written `\\n`), so a line after a bare `\\r` is escaped like any other. Leading blanks
    become entities so that an indented line cannot open a code block.
    """
    return "\n".join(_escape_markdown_line(line) for line in LINE_BREAK.split(text.replace("\x00", "\ufffd")))


def _escape_markdown_line(line: str) -> str:
    escaped = _INLINE_MARKDOWN.sub(r"\\\1", html.escape(line, quote=False))
    escaped = _WORD_DOT.sub(r"\\.", escaped)
    escaped = _LINE_START_MARKER.sub(r"\1\\\2", escaped)
    escaped = _LINE_START_NUMBER.sub(r"\1\\\2", escaped)
    return _LEADING_BLANKS.sub(lambda m: "&#32;" * len(m.group()), escaped)


def escape_terminal(text: str) -> str:
    """`text` safe to print to a terminal: every control character shown as an escape, never acted on.

    A document saying `\\033]0;title\\007\\033[2J` would retitle the window and clear the screen; a
    bare `\\r` would let a line overwrite the one before it. Line breaks of every convention become
    `\\n` and tabs stay; other C0/C1 controls, DEL and bidirectional overrides become visible
    `\\x1b`-style escapes (so an escape sequence prints as harmless text), the backslash before
    them included: what is printed can be told apart from a real backslash-x in the document only
    by context, which is the trade-off for keeping ordinary text unchanged.
    """
    lines = LINE_BREAK.sub("\n", text)
    return _TERMINAL_CONTROLS.sub(lambda m: _visible_escape(m.group()), lines)


def _visible_escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"
