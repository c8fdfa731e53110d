"""The report's one translation layer: gettext catalogs and locale formats (Babel), bound per report.

Every word a report prints goes through :func:`_` (or :func:`ngettext`) and every number or date
through :func:`num`, :func:`integer` or :func:`date`. The active language is a context variable:
:func:`activate` sets it for a notebook kernel (``run_study`` does, from the scenario's
``report_language``) and :func:`language` for a block (``sections`` binds each section to its
study's language), so two reports in one process never mix languages.

Catalogs: ``locale/<locale>/LC_MESSAGES/llmsizing.po`` (the translations, reviewed text) and the
compiled ``llmsizing.mo`` beside it. English is the source language (the msgids) and needs no
catalog. To add or change text::

    pybabel extract -F lib/llmsizing/report/babel.cfg -o lib/llmsizing/report/locale/llmsizing.pot lib/llmsizing/report
    pybabel update -i lib/llmsizing/report/locale/llmsizing.pot -d lib/llmsizing/report/locale -D llmsizing
    # translate the new msgids in the .po, then
    pybabel compile -d lib/llmsizing/report/locale -D llmsizing
    python -m llmsizing.report.i18n        # check: every msgid translated, .mo up to date (make i18n-check)

Strings defined at import time are marked with :func:`N_` and translated where they are used.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as _dt
import gettext
import sys
from collections.abc import Iterator
from pathlib import Path

from babel.dates import format_date
from babel.numbers import format_decimal

from llmsizing.choices import REPORT_LANGUAGES

__all__ = ["cover_labels", "DOMAIN", "LOCALE_DIR", "LOCALES", "N_", "_", "activate", "current", "date", "integer", "language",
           "ngettext", "num", "unit"]

DOMAIN = "llmsizing"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
#: Babel/gettext locale of each report language.
LOCALES = {"en": "en_US", "zh": "zh_CN"}
#: Joins a number to its unit so a line never breaks between them.
NBSP = "\u00a0"

_translations: dict[str, gettext.NullTranslations] = {}
_active: contextvars.ContextVar[str] = contextvars.ContextVar("llmsizing_report_language", default="en")


def _catalog(lang: str) -> gettext.NullTranslations:
    if lang not in _translations:
        if lang == "en":
            _translations[lang] = gettext.NullTranslations()
        else:
            # fallback=False: a missing compiled catalog is a packaging error, not English text in a Chinese report
            _translations[lang] = gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[LOCALES[lang]])
    return _translations[lang]


def activate(lang: str) -> None:
    """Make ``lang`` (``en`` or ``zh``) the language of everything formatted from now on in this context."""
    if lang not in REPORT_LANGUAGES:
        raise ValueError(f"unknown report language {lang!r}; choose one of: {', '.join(REPORT_LANGUAGES)}")
    _catalog(lang)
    _active.set(lang)


@contextlib.contextmanager
def language(lang: str) -> Iterator[None]:
    """Format in ``lang`` inside the block, then restore the previous language."""
    token = _active.set(_active.get())
    try:
        activate(lang)
        yield
    finally:
        _active.reset(token)


def current() -> str:
    """The active report language."""
    return _active.get()


def _(message: str) -> str:
    """``message`` in the active language."""
    return _catalog(_active.get()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural form for ``n`` in the active language."""
    return _catalog(_active.get()).ngettext(singular, plural, n)


def N_(message: str) -> str:
    """Mark a string defined at import time for extraction; translate it with :func:`_` where it is used."""
    return message


def _locale() -> str:
    return LOCALES[_active.get()]


def num(x: float, digits: int = 1) -> str:
    """``x`` with thousands separators and ``digits`` decimals in the active locale (never exponent notation)."""
    pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
    return format_decimal(x, format=pattern, locale=_locale(), decimal_quantization=True)


def integer(n: float) -> str:
    """``n`` rounded to an integer, with thousands separators."""
    return num(round(n), 0)


def unit(value: str, unit_name: str) -> str:
    """``value`` and its unit joined by a no-break space ("626.9 GiB")."""
    return f"{value}{NBSP}{unit_name}"


def date(iso: str) -> str:
    """An ISO date as the locale writes it: ``2026-12-07`` in English, ``2026年12月7日`` in Chinese."""
    if not iso:
        return iso
    d = _dt.date.fromisoformat(iso)
    return d.isoformat() if _active.get() == "en" else format_date(d, format="long", locale=_locale())


def cover_labels(lang: str, iso_date: str) -> dict[str, str]:
    """The words of the cover, running footer and colophon in ``lang`` (the template prints them as given)."""
    with language(lang):
        return {"lang": "zh-CN" if lang == "zh" else "en", "prepared_for": _("Prepared for"),
                "scenario": _("Scenario"), "date": _("Date"), "date_text": date(iso_date) if iso_date else "",
                "version": _("version {version}"), "page": _("Page {page} of {pages}"),
                "colophon": _("Figures are estimates computed from published specifications and the assumptions "
                              "stated in this report; confirm them on the target hardware before purchase."),
                "generated": _("Generated by llmsizing {version} from scenario {scenario} on {date}.")}


# --------------------------------------------------------------------------- catalog check


def check_catalogs() -> list[str]:
    """Problems with the catalogs: untranslated or fuzzy msgids, msgids missing from the .po, a stale .mo."""
    from babel.messages.extract import extract_from_dir
    from babel.messages.mofile import read_mo
    from babel.messages.pofile import read_po

    problems = []
    source = Path(__file__).resolve().parent
    method_map = [("**.py", "python"), ("**/templates/**.j2", "ignore")]
    wanted = set()
    for _file, _line, msg, _comments, _ctx in extract_from_dir(
            str(source), method_map=method_map, keywords={"_": None, "N_": None, "ngettext": (1, 2)}):
        wanted.add(msg if isinstance(msg, str) else msg[0])
    for lang, loc in LOCALES.items():
        if lang == "en":
            continue
        po_path = LOCALE_DIR / loc / "LC_MESSAGES" / f"{DOMAIN}.po"
        mo_path = po_path.with_suffix(".mo")
        if not po_path.is_file():
            problems.append(f"{po_path}: missing")
            continue
        with po_path.open("rb") as f:
            po = read_po(f, locale=loc)
        have = {}
        for m in po:
            if not m.id:
                continue
            key = m.id if isinstance(m.id, str) else m.id[0]
            have[key] = m
            strings = m.string if isinstance(m.string, (list, tuple)) else [m.string]
            if not all(strings):
                problems.append(f"{po_path.name} ({loc}): untranslated: {key!r}")
            if m.fuzzy:
                problems.append(f"{po_path.name} ({loc}): fuzzy: {key!r}")
        for key in sorted(wanted - set(have)):
            problems.append(f"{po_path.name} ({loc}): not in the catalog: {key!r}")
        if not mo_path.is_file():
            problems.append(f"{mo_path}: not compiled (pybabel compile -d {LOCALE_DIR} -D {DOMAIN})")
            continue
        with mo_path.open("rb") as f:
            mo = read_mo(f)
        def strings(m: object) -> tuple:
            return tuple(m.string) if isinstance(m.string, (list, tuple)) else (m.string,)

        compiled = {(m.id if isinstance(m.id, str) else m.id[0]): strings(m) for m in mo if m.id}
        for key, m in have.items():
            if not m.fuzzy and compiled.get(key) != strings(m):
                problems.append(f"{mo_path.name} ({loc}): out of date for {key!r} (recompile the catalog)")
                break
    return problems


def main() -> int:
    problems = check_catalogs()
    for p in problems[:50]:
        print(p, file=sys.stderr)
    if problems:
        print(f"i18n: {len(problems)} problem(s) in the report catalogs", file=sys.stderr)
        return 1
    print("i18n: every report string is translated and the catalogs are compiled")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
