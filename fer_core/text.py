"""Text from users (run names, file names, error messages) made safe to show as Markdown.

Streamlit renders `st.markdown`, captions, headers and alert boxes as GitHub Markdown plus
its own directives (`:red[...]`, `:material/icon:`, `$math$`), so a run called
`![x](https://tracker.example/p.png)` would load an external image in every viewer's
browser and `[ok](https://evil.example)` would become a link. `escape_markdown` makes such
text read literally.
"""

from __future__ import annotations

import re
import string

# Every ASCII punctuation character may be backslash-escaped in CommonMark, and an escaped
# one is always shown as itself: escaping them all leaves nothing to interpret.
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029\x0b\x0c]+")


def escape_markdown(text: object) -> str:
    """`text` as Markdown that renders as exactly those characters on one line: no links,
    images, emphasis, HTML, headings, math, colour or icon directives, and no bare-URL
    autolinks (the escaped `:` and `.` break them)."""
    one_line = _LINE_BREAKS.sub(" ", str(text))
    return _PUNCTUATION.sub(r"\\\1", one_line)


__all__ = ["escape_markdown"]
