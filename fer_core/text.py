"""Text for people: user text (run names, file names, error messages) made safe to show as
Markdown, and durations in words.

Streamlit renders `st.markdown`, captions, headers and alert boxes as GitHub Markdown plus
its own directives (`:red[...]`, `:material/icon:`, `$math$`), so a run called
`![x](https://tracker.example/p.png)` would load an external image in every viewer's
browser and `[ok](https://evil.example)` would become a link. `escape_markdown` makes such
text read literally.
"""

from __future__ import annotations

import math
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


def format_seconds(seconds: float | None) -> str:
    """`42 s`, `3 min 05 s`, `2 h 07 min`; an em dash when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


__all__ = ["escape_markdown", "format_seconds"]
