"""fer_core.text: run names escaped for Markdown render literally."""

from __future__ import annotations

import pytest

from sample_files import HOSTILE_NAMES

pytestmark = pytest.mark.usefixtures("fer_dirs")


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_escape_markdown_renders_literally(name) -> None:
    """Markdown in run names: the escaped text renders as plain text (no link, image,
    HTML, heading, emphasis or code) on one line, showing exactly the original characters."""
    from markdown_it import MarkdownIt

    from fer_core.text import escape_markdown

    escaped = escape_markdown(name)
    html = MarkdownIt("commonmark").render(escaped)
    for tag in ("<a", "<img", "<h1", "<em", "<strong", "<code", "<blockquote"):
        assert tag not in html, (name, html)
    assert "\n" not in escaped and "://" not in escaped and "www." not in escaped
    plain = html.removeprefix("<p>").removesuffix("</p>\n")
    unescaped = plain.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"') \
        .replace("&amp;", "&")
    assert unescaped == " ".join(name.replace("\n", " ").split(" "))

