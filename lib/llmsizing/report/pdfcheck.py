"""Read a report PDF back the way a reader sees it: words past the right margin, near-empty pages, fonts.

Uses poppler-utils (``pdftotext -bbox``, ``pdftoppm``, ``pdffonts``; ``make sysdeps`` installs
them). The page box is the stylesheet's: A4 with 17 mm side margins, 22 mm top and 20 mm bottom.
"""

from __future__ import annotations

import html
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Word", "embedded_fonts", "page_fill", "words", "words_past_margin"]

MM = 72 / 25.4                       # points per millimetre
PAGE_W, PAGE_H = 210 * MM, 297 * MM
MARGIN_SIDE, MARGIN_TOP, MARGIN_BOTTOM = 17 * MM, 22 * MM, 20 * MM
#: A word may end this far past the margin (glyph side bearings, rounding) and still be inside.
TOLERANCE_PT = 1.5

_WORD = re.compile(r'<word xMin="([0-9.]+)" yMin="([0-9.]+)" xMax="([0-9.]+)" yMax="([0-9.]+)">(.*?)</word>')


@dataclass(frozen=True)
class Word:
    page: int          # 1-based
    x0: float
    y0: float
    x1: float
    y1: float
    text: str


def words(pdf: str | Path) -> list[Word]:
    """Every word of every page with its box in points (``pdftotext -bbox``)."""
    out = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], check=True, capture_output=True, text=True).stdout
    result: list[Word] = []
    for page, chunk in enumerate(out.split("<page ")[1:], start=1):
        for m in _WORD.finditer(chunk):
            x0, y0, x1, y1 = (float(m.group(i)) for i in range(1, 5))
            result.append(Word(page, x0, y0, x1, y1, html.unescape(m.group(5))))
    return result


def words_past_margin(pdf: str | Path) -> list[Word]:
    """Words that end beyond the right margin (or start before the left one)."""
    right = PAGE_W - MARGIN_SIDE + TOLERANCE_PT
    left = MARGIN_SIDE - TOLERANCE_PT
    return [w for w in words(pdf) if w.x1 > right or w.x0 < left]


def page_fill(pdf: str | Path, dpi: int = 18) -> list[float]:
    """Per page, how far down the text area the content reaches (0 empty, 1 full), text and figures alike.

    Renders each page in grey at low resolution and finds the lowest non-white row between the
    running header and footer.
    """
    out = subprocess.run(["pdftoppm", "-gray", "-r", str(dpi), str(pdf)], check=True, capture_output=True).stdout
    fills: list[float] = []
    i = 0
    while i < len(out):
        # binary PGM: "P5\n<w> <h>\n255\n<data>"
        header = []
        while len(header) < 4:
            j = i
            while out[j:j + 1].isspace():
                j += 1
            k = j
            while not out[k:k + 1].isspace():
                k += 1
            header.append(out[j:k])
            i = k
        i += 1
        w, h = int(header[1]), int(header[2])
        data = out[i:i + w * h]
        i += w * h
        scale = h / PAGE_H
        top, bottom = int(MARGIN_TOP * scale) + 1, int((PAGE_H - MARGIN_BOTTOM) * scale) - 1
        lowest = top
        for row in range(top, bottom):
            line = data[row * w:(row + 1) * w]
            if min(line) < 200:
                lowest = row
        fills.append((lowest - top) / max(1, bottom - top))
    return fills


def embedded_fonts(pdf: str | Path) -> list[tuple[str, bool]]:
    """(font name, embedded?) for every font of the PDF (``pdffonts``)."""
    out = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True).stdout
    fonts = []
    for line in out.splitlines()[2:]:
        parts = line.split()
        if len(parts) >= 5:
            emb = [p for p in parts if p in ("yes", "no")]
            fonts.append((parts[0], bool(emb) and emb[0] == "yes"))
    return fonts
