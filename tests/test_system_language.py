"""Without ``language`` in the config and without locale variables (Windows sets none
of LANG, LC_ALL, LC_MESSAGES, LANGUAGE), sheetcrm speaks the system's language: the
user's display language on Windows (``GetUserDefaultUILanguage``), else the locale's
name (``locale.getlocale()``: ``Korean_Korea`` on Windows, ``ko_KR`` elsewhere).

The system is read by ``i18n.system_locale``; what it says is decided by
``i18n.language_of_system``, given the values here as Windows would give them.
"""

from __future__ import annotations

import sys

import pytest

from sheetcrm import i18n

KOREAN_WINDOWS = ("Korean_Korea", 0x0412)
ENGLISH_WINDOWS = ("English_United States", 0x0409)


@pytest.mark.parametrize(("name", "display", "language"), [
    ("Korean_Korea", 0x0412, "ko"),  # Korean Windows
    (None, 0x0412, "ko"),
    ("English_United States", 0x0409, "en"),
    ("Korean_Korea", 0x0409, "en"),  # Korean formats, an English display: English
    ("English_United States", 0x0412, "ko"),  # the display language is what is read
    ("Korean_Korea", None, "ko"),  # no display language: the locale's name
    ("ko_KR", None, "ko"),
    ("ko", None, "ko"),
    ("kok_IN", None, "en"),  # Konkani, not Korean
    ("en_US", None, "en"),
    (None, None, "en"),
])
def test_the_system_language_is_korean_when_windows_shows_korean(
        name: str | None, display: int | None, language: str) -> None:
    assert i18n.language_of_system(name, display) == language


def test_without_locale_variables_the_system_decides() -> None:
    assert i18n.language_from_env({}, system=lambda: KOREAN_WINDOWS) == "ko"
    assert i18n.language_from_env({}, system=lambda: ENGLISH_WINDOWS) == "en"


def test_a_locale_variable_decides_before_the_system() -> None:
    assert i18n.language_from_env({"LANG": "C.UTF-8"}, system=lambda: KOREAN_WINDOWS) == "en"
    assert i18n.language_from_env({"LANGUAGE": "ko:en"}, system=lambda: ENGLISH_WINDOWS) == "ko"
    assert i18n.language_from_env({"LANG": "en_US.UTF-8", "LANGUAGE": "ko"},
                                  system=lambda: ENGLISH_WINDOWS) == "en"


def test_the_system_is_read_only_on_windows() -> None:
    name, display = i18n.system_locale()
    if sys.platform == "win32":
        assert display is None or 0 < display < 0x10000
    else:  # the locale variables are the locale: nothing more is read
        assert (name, display) == (None, None)

