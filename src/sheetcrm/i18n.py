"""The operator's language: every message they read goes through ``_()`` and a catalog.

Messages are English in the code (the msgid) and looked up in gettext catalogs at the
moment they are shown, so one process speaks one language:

- ``_("{column}: {value!r} is not a date", column=c, value=v)`` translates, then fills
  the named placeholders (``str.format``; a message without values is not formatted,
  so its braces stay as written). ``ngettext(singular, plural, n, ...)`` picks the
  form for a count and fills ``{n}`` too.
- Strings defined at import time (tables of texts, constants) are marked ``N_("…")``
  so extraction finds them, and translated with ``_()`` where they are shown: the
  language is chosen after the modules are imported.
- The language is one process-wide setting: the command line sets it from the
  config it was given (``sheetcrm.config.language.peek_language`` reads the file's
  top-level ``language`` before validating it, so even a config error reads in the
  operator's language), the daemon again on each reload; the default is the
  environment's (``LC_ALL``/``LC_MESSAGES``/``LANG``/``LANGUAGE`` starting with ``ko``),
  and where none of those is set (Windows sets none) Windows' own: the user's display
  language, else the locale's name (``language_of_system``); else English.

The catalogs are ``locale/{ko,en}/LC_MESSAGES/sheetcrm.po`` beside this file, compiled
to the ``.mo`` files read here with the standard library's ``gettext`` (Babel extracts
and compiles them at development time: docs/translating.md; a test holds the ``.mo``
files to the ``.po`` files and both catalogs to the code).
"""

from __future__ import annotations

import gettext as _gettext
import locale
import sys
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal, cast

Language = Literal["ko", "en"]

#: The languages sheetcrm speaks, each with a complete catalog.
LANGUAGES: tuple[Language, ...] = ("ko", "en")
DEFAULT_LANGUAGE: Language = "en"
DOMAIN = "sheetcrm"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

_current: Language = DEFAULT_LANGUAGE


@cache
def translations(language: Language) -> _gettext.NullTranslations:
    """The compiled catalog of ``language`` (English falls back to the msgids)."""
    return _gettext.translation(DOMAIN, LOCALE_DIR, languages=[language], fallback=True)


def set_language(language: str) -> None:
    """Speak ``language`` from now on, in the whole process. ValueError if unknown."""
    global _current
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; expected one of {LANGUAGES}")
    _current = cast(Language, language)


def current_language() -> Language:
    return _current


#: What the system says of its language: the locale's name (``locale.getlocale()``:
#: ``ko_KR``, or ``Korean_Korea`` on Windows) and, on Windows, the user's display
#: language (``GetUserDefaultUILanguage``, a LANGID: ``0x0412`` is Korean).
SystemLocale = tuple[str | None, int | None]
_LANG_KOREAN = 0x12  # the primary language of a Windows LANGID (its low 10 bits)


def system_locale() -> SystemLocale:
    """What Windows says: the locale's name and the user's display language. Elsewhere
    the locale variables are the locale, and nothing more is read (a program started
    without them runs in the C locale: English)."""
    if sys.platform != "win32":
        return None, None
    import ctypes

    display = int(ctypes.windll.kernel32.GetUserDefaultUILanguage())
    return locale.getlocale()[0], display or None  # 0: the call failed


def language_of_system(name: str | None, display: int | None) -> Language:
    """Korean when Windows shows the user Korean (``display`` 0x0412), or, without a
    display language, when the locale's name is Korean (``ko_KR``, ``Korean_Korea``)."""
    if display is not None:
        return "ko" if display & 0x3FF == _LANG_KOREAN else "en"
    lowered = (name or "").lower()
    korean = lowered == "ko" or lowered.startswith(("ko_", "ko-", "korean"))
    return "ko" if korean else DEFAULT_LANGUAGE


def language_from_env(env: Mapping[str, str],
                      system: Callable[[], SystemLocale] = system_locale) -> Language:
    """Korean when the locale variables say so (``ko_KR.UTF-8``, ``ko``), else English.

    The first of ``LC_ALL``, ``LC_MESSAGES``, ``LANG``, ``LANGUAGE`` that is set decides,
    as for every program that follows the locale. When none is set (Windows has none
    of them), the system decides (``system()``, read only then: ``language_of_system``).
    """
    for name in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = env.get(name, "")
        if value:
            return "ko" if value.lower().startswith("ko") else "en"
    return language_of_system(*system())


def N_(message: str) -> str:  # noqa: N802 (gettext's name for the marker)
    """Mark a string for the catalogs without translating it yet (``gettext_noop``)."""
    return message


def _(message: str, /, **values: Any) -> str:
    """``message`` in the current language, its ``{name}`` placeholders filled."""
    text = translations(_current).gettext(message)
    return text.format(**values) if values else text


def ngettext(singular: str, plural: str, n: int, /, **values: Any) -> str:
    """The form of a message for the count ``n`` (``{n}`` is filled with it)."""
    text = translations(_current).ngettext(singular, plural, n)
    return text.format(n=n, **values)


def in_language(language: Language, message: str, /, **values: Any) -> str:
    """``message`` in a given language, whatever the process speaks (a page shown to a
    customer, a report whose language is set apart)."""
    text = translations(language).gettext(message)
    return text.format(**values) if values else text
