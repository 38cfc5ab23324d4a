"""Web pages: the main content as Markdown-like text the chunker reads (headings, paragraphs, lists, tables).

A saved web page is mostly not the article: navigation, cookie banners, site headers and
footers, "related articles", share buttons. Those must never be quoted, so the reader keeps
the main content only. It prefers `<main>` (or `role="main"`), then a single `<article>`,
else `<body>`; inside it, it removes what is never content (scripts, styles, forms, `nav`,
`aside`, `footer`, page-level `header`), what is hidden (`hidden`, `aria-hidden="true"`,
`display:none`), landmark roles that are not content (banner, navigation, contentinfo,
complementary, search, dialog), elements whose class or id names a cookie/consent banner,
sharing, ads, breadcrumbs or related links, and sections headed "Related articles" (or
"See also", "You may also like", "Read more", ...). The trade-off: a page that puts real
content in an `<aside>` loses it; one that puts boilerplate in plain `<div>`s keeps it.

The text is built by fixed rules, so re-reading the same bytes gives the same text:
`h1`-`h6` become `#`-lines; every other block (paragraph, list item, table row, caption) has
its whitespace collapsed to single spaces, entities decoded, soft hyphens and zero-width
spaces removed; blocks are separated by a blank line; list items are `- ` lines (nested
items indented by two spaces per level); tables are pipe tables whose first row is the
header, followed by a `|---|` separator, with `|` inside a cell replaced by `/`.

Example:
    >>> page = b"<html><body><nav>Home</nav><main><h1>Iron</h1><p>Iron is a <b>metal</b>.</p></main></body></html>"
    >>> print(extract_html(page).text)
    # Iron
    <BLANKLINE>
    Iron is a metal.
    <BLANKLINE>
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser, LexborNode

from assistant.readers.base import Extracted, Unreadable

_NEVER_CONTENT = frozenset(
    "script style noscript template svg canvas iframe object embed form button input select textarea "
    "nav aside footer dialog video audio map head title meta link".split()
)
_HIDDEN_ROLES = frozenset("banner navigation contentinfo complementary search dialog alertdialog menu menubar toolbar".split())
_BOILERPLATE_SUBSTRINGS = ("cookie", "consent", "gdpr", "newsletter")
_BOILERPLATE_TOKENS = frozenset(
    "banner related share sharing social breadcrumb breadcrumbs sidebar advert advertisement ad ads promo popup "
    "modal navbar nav navigation menu skip".split()
)
_RELATED_HEADING = re.compile(
    r"(related|see also|you (may|might) also|more (on|about|from|in|like) |read more|recommended|popular|trending|"
    r"most read|further reading)",
    re.IGNORECASE,
)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.IGNORECASE)
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_BLOCKS = frozenset(
    "p div section article main header ul ol li table thead tbody tfoot tr td th blockquote pre figure figcaption "
    "dl dt dd address details summary hr center fieldset caption".split()
) | frozenset(_HEADINGS)
_INVISIBLE = dict.fromkeys(map(ord, "\u00ad\u200b\u200c\u200d\u2060\ufeff"))
_META_CHARSET = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_:.-]{1,40})""", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_RULE_ONLY = re.compile(r"[-=_*·•.\s]*")
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]{0,30})\b[^>]*?(/?)>")
# Elements that are void, or that pages often leave unclosed (the parser closes them itself).
_UNNESTED = frozenset(
    "area base br col embed hr img input link meta source track wbr p li dt dd tr td th option optgroup tbody thead "
    "tfoot colgroup rt rp".split()
)
MAX_DEPTH = 400  # real pages nest 20-80 deep; HTML parsers slow down quadratically on thousands


def decode_html(data: bytes) -> str:
    """Decode a page as a browser would: byte-order mark, then `<meta charset>`, then UTF-8, then windows-1252."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    if match := _META_CHARSET.search(data[:4096]):
        try:
            encoding = codecs.lookup(match.group(1).decode("ascii")).name
        except LookupError:
            encoding = "utf-8"
        if encoding in ("latin-1", "iso8859-1", "ascii"):
            encoding = "cp1252"  # what browsers do with these labels (WHATWG Encoding)
        if encoding.startswith("utf-16"):
            encoding = "utf-8"  # a page that declares UTF-16 without a byte-order mark is ASCII-compatible
        return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _collapse(text: str) -> str:
    return " ".join(text.translate(_INVISIBLE).split())


def _class_words(node: LexborNode) -> str:
    attrs = node.attributes
    return f"{attrs.get('class') or ''} {attrs.get('id') or ''}".lower()


def _is_boilerplate(node: LexborNode) -> bool:
    attrs = node.attributes
    if "hidden" in attrs or (attrs.get("aria-hidden") or "").lower() == "true":
        return True
    if (attrs.get("role") or "").lower() in _HIDDEN_ROLES:
        return True
    if _HIDDEN_STYLE.search(attrs.get("style") or ""):
        return True
    words = _class_words(node)
    named = any(part in words for part in _BOILERPLATE_SUBSTRINGS) or any(
        token in _BOILERPLATE_TOKENS for token in re.split(r"[^a-z0-9]+", words)
    )
    # A class name is a guess: a "hero-banner" that holds the page's title is content.
    return named and node.css_first("h1") is None


def _main_content(tree: LexborHTMLParser) -> LexborNode | None:
    """`<main>` or `role=main`, else the only `<article>`, else `<body>`."""
    for selector in ("main", "[role=main]"):
        found = tree.css(selector)
        if len(found) == 1:
            return found[0]
    articles = tree.css("article")
    if len(articles) == 1:
        return articles[0]
    return tree.body


def _elements(node: LexborNode) -> list[LexborNode]:
    return [child for child in node.iter() if child.is_element_node]


def _is_page_header(node: LexborNode, root: LexborNode) -> bool:
    """A `<header>` outside any article or section of `<body>`: the site's banner (an article's own header stays)."""
    if root.tag != "body":
        return False
    parent = node.parent
    while parent is not None and parent.mem_id != root.mem_id:
        if parent.tag in ("article", "section", "main"):
            return False
        parent = parent.parent
    return True


def _strip_boilerplate(root: LexborNode) -> None:
    """Remove from `root`'s descendants everything that is never quoted.

    Only the topmost doomed element of a subtree is removed (its descendants go with it), and
    the walk uses an explicit stack, so a deeply nested page cannot exhaust Python's recursion.
    """
    doomed: list[LexborNode] = []
    stack = _elements(root)[::-1]
    while stack:
        node = stack.pop()
        tag = node.tag
        if tag in _NEVER_CONTENT or _is_boilerplate(node) or (tag == "header" and _is_page_header(node, root)):
            doomed.append(node)
        else:
            stack.extend(_elements(node)[::-1])
    for node in doomed:
        node.decompose(recursive=True)
    for _ in range(1000):  # re-query after each removal: a removed section frees the headings inside it
        heading = next((h for h in root.css("h2, h3, h4, h5, h6") if _RELATED_HEADING.match(_collapse(h.text()))), None)
        if heading is None:
            break
        _drop_related_section(heading, root)


def _drop_related_section(heading: LexborNode, root: LexborNode) -> None:
    """Drop a "Related articles" section: its container if it leads one, else the heading and what follows it."""
    parent = heading.parent
    if parent is not None and parent.mem_id != root.mem_id and parent.tag in ("section", "div", "aside", "nav"):
        first = next((c for c in parent.css("h1, h2, h3, h4, h5, h6")), None)
        if first is not None and first.mem_id == heading.mem_id:
            parent.decompose(recursive=True)
            return
    level = _HEADINGS[heading.tag]
    sibling = heading.next
    heading.decompose(recursive=True)
    while sibling is not None:
        after = sibling.next
        if sibling.tag in _HEADINGS and _HEADINGS[sibling.tag] <= level:
            break
        sibling.decompose(recursive=True)
        sibling = after


@dataclass
class _Writer:
    """Collects blocks in document order; inline text waits in `inline` until a block boundary."""

    blocks: list[str] = field(default_factory=list)
    inline: list[str] = field(default_factory=list)

    def flush(self) -> None:
        # Two line breaks in a row end a paragraph; a single one is a space.
        for part in re.split(r"\n[ \t\r\f\v]*\n", "".join(self.inline)):
            text = _collapse(part)
            if text and not _RULE_ONLY.fullmatch(text):
                self.blocks.append(text)
        self.inline.clear()

    def add(self, block: str) -> None:
        self.flush()
        if block:
            self.blocks.append(block)


def _inline_text(node: LexborNode, *, skip: frozenset[str] = frozenset()) -> str:
    """The text of `node` and its descendants, collapsed, leaving out subtrees tagged `skip`."""
    parts: list[str] = []

    def visit(current: LexborNode) -> None:
        for child in current.iter(include_text=True):
            if child.is_text_node:
                parts.append(child.text_content or "")
            elif child.is_element_node and child.tag not in skip:
                if child.tag == "br" or child.tag in _BLOCKS:
                    parts.append(" ")
                visit(child)
                if child.tag in _BLOCKS:
                    parts.append(" ")

    visit(node)
    return _collapse("".join(parts))


def _cell_text(cell: LexborNode) -> str:
    return _inline_text(cell).replace("|", "/")


def _rows(table: LexborNode) -> list[list[str]]:
    rows: list[list[str]] = []
    for child in table.iter():
        groups = [child] if child.tag == "tr" else ([c for c in child.iter() if c.tag == "tr"] if child.tag in ("thead", "tbody", "tfoot") else [])
        for row in groups:
            cells = [_cell_text(cell) for cell in row.iter() if cell.tag in ("td", "th")]
            if any(cells):
                rows.append(cells)
    return rows


def _is_layout_table(table: LexborNode) -> bool:
    """A table used to lay out a page (nested tables, or one column) is read as a container, not as data."""
    if any(nested.mem_id != table.mem_id for nested in table.css("table")):
        return True
    return all(len(row) <= 1 for row in _rows(table))


def _write_table(table: LexborNode, out: _Writer) -> None:
    caption = table.css_first("caption")
    if caption is not None:
        out.add(_inline_text(caption))
    rows = _rows(table)
    if not rows:
        return
    width = max(len(row) for row in rows)
    lines = ["| " + " | ".join(cell or " " for cell in row + [""] * (width - len(row))) + " |" for row in rows]
    if len(lines) > 1:  # a header row needs rows under it, or the chunker would have nothing to quote
        lines.insert(1, "|" + "---|" * width)
    out.add("\n".join(lines))


def _child_lists(node: LexborNode) -> list[LexborNode]:
    """The lists nested in `node` that are not inside another list of `node`."""
    found: list[LexborNode] = []
    stack = _elements(node)[::-1]
    while stack:
        current = stack.pop()
        if current.tag in ("ul", "ol"):
            found.append(current)
        else:
            stack.extend(_elements(current)[::-1])
    return found


def _write_list(node: LexborNode, depth: int, items: list[str]) -> None:
    for item in _elements(node):
        if item.tag != "li":
            continue
        text = _inline_text(item, skip=frozenset({"ul", "ol"}))
        if text and not _RULE_ONLY.fullmatch(text):
            items.append("  " * depth + "- " + text)
        for nested in _child_lists(item):
            _write_list(nested, depth + 1, items)


def _walk(node: LexborNode, out: _Writer) -> None:
    for child in node.iter(include_text=True):
        if child.is_text_node:
            out.inline.append(child.text_content or "")
            continue
        if not child.is_element_node:
            continue
        tag = child.tag
        if tag == "br":
            out.inline.append("\n")
        elif tag in _HEADINGS:
            text = _inline_text(child)
            out.add(f"{'#' * _HEADINGS[tag]} {text}" if text else "")
        elif tag in ("ul", "ol"):
            items: list[str] = []
            _write_list(child, 0, items)
            out.add("\n".join(items))
        elif tag == "table":
            if _is_layout_table(child):
                out.flush()
                _walk(child, out)
                out.flush()
            else:
                _write_table(child, out)
        elif tag in ("hr",):
            out.flush()
        elif tag in _BLOCKS:
            out.flush()
            _walk(child, out)
            out.flush()
        else:
            _walk(child, out)  # inline element: its text joins the current paragraph


def _title(tree: LexborHTMLParser) -> str:
    node = tree.css_first("title")
    return _collapse(node.text()).split(" | ")[0].strip() if node is not None else ""


def nesting_depth(markup: str) -> int:
    """How deep the page's elements nest, estimated from its tags without parsing it."""
    depth = deepest = 0
    for match in _TAG.finditer(markup):
        closing, name, self_closing = match.groups()
        if name.lower() in _UNNESTED or self_closing:
            continue
        depth = max(depth - 1, 0) if closing else depth + 1
        deepest = max(deepest, depth)
    return deepest


def extract_html(data: bytes) -> Extracted:
    """The main content of a web page as text; Unreadable when nothing readable is left.

    A page nested more than `MAX_DEPTH` elements deep is refused before parsing: such nesting
    is only found in hostile pages, and it makes parsing take minutes.
    """
    markup = decode_html(data)
    if (depth := nesting_depth(markup)) > MAX_DEPTH:
        raise Unreadable(f"its elements are nested {depth:,} deep (more than {MAX_DEPTH}); it looks built to stall readers")
    tree = LexborHTMLParser(markup)
    root = _main_content(tree)
    if root is None:
        raise Unreadable("it has no <body> to read")
    title = _title(tree)
    out = _Writer()
    try:
        _strip_boilerplate(root)
        _walk(root, out)
    except RecursionError as exc:
        raise Unreadable("its elements are nested too deeply to read") from exc
    out.flush()
    if title and not any(block.startswith("#") for block in out.blocks):
        out.blocks.insert(0, f"# {title}")
    if not any(not block.startswith("#") for block in out.blocks):
        raise Unreadable("its main content has no text (is it rendered by JavaScript? save the page after it loads)")
    return Extracted(text="\n\n".join(out.blocks) + "\n", kind="html")
