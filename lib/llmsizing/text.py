"""The one sanitizer for user text (customer, title, notes, model and GPU names, file names) before it
reaches HTML, PDF, charts or the terminal.

* :func:`clean_text` -- for every output: control characters (C0 except tab/newline, DEL, C1,
  so ESC and BEL) are removed; bidirectional overrides and isolates (U+202A..U+202E, U+2066..U+2069)
  and other invisible format characters that reorder or hide text (U+200E/F, U+061C) are removed,
  so a right-to-left override in a customer name cannot reverse the rest of a sentence; lone
  surrogates (from ``surrogateescape`` file names or ``\\ud800`` escapes) become U+FFFD.
* :func:`for_terminal` -- :func:`clean_text`, with newlines and tabs made spaces (one line: no log
  forging with a fake second line).
* :func:`for_chart` -- :func:`clean_text` with matplotlib's mathtext disabled: ``$`` is escaped, so
  ``$x^2$`` prints as typed and ``$\\frac{1}{$`` cannot crash the figure.

HTML escaping is NOT done here: the report template autoescapes once (``O'Brien`` stays O'Brien in
the text; escaping it here too would show ``O&#x27;Brien``).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["clean_text", "for_chart", "for_terminal"]

# C0 controls except \t and \n (\r is dropped too), DEL, C1 controls.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Bidirectional embeddings/overrides/isolates and marks: LRE RLE PDF LRO RLO, LRI RLI FSI PDI, LRM RLM ALM.
_BIDI_RE = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def clean_text(text: object) -> str:
    """``text`` without control characters, bidi overrides or lone surrogates (see module doc)."""
    s = text if isinstance(text, str) else str(text)
    if _SURROGATE_RE.search(s):
        # join a valid surrogate pair (a character beyond U+FFFF written as two escapes); replace the rest
        s = s.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        s = _SURROGATE_RE.sub("\ufffd", s)
    s = _CONTROL_RE.sub("", s.replace("\r\n", "\n"))
    s = _BIDI_RE.sub("", s)
    return unicodedata.normalize("NFC", s)


def for_terminal(text: object) -> str:
    """:func:`clean_text` on one line: newlines and tabs become spaces, runs of spaces collapse."""
    return " ".join(clean_text(text).split())


def for_chart(text: object) -> str:
    """:func:`clean_text` safe for matplotlib: ``$`` escaped so no mathtext is parsed."""
    return clean_text(text).replace("\\$", "$").replace("$", "\\$")
