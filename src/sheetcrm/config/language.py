"""The top-level ``language``: which language sheetcrm speaks to the operator.

``language = "ko"`` or ``"en"``; without it, the environment's (``LANG=ko_KR.UTF-8`` →
Korean), else English. The command line must know it *before* the config is validated,
since the config's own errors are messages too: ``peek_language`` reads only that key,
from a file that may be broken anywhere else (even TOML that does not parse, where a
line ``language = "ko"`` above the first table is looked for). ``[report] language``
defaults to it and stays an override for the report alone (``with_language``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sheetcrm.i18n import LANGUAGES, Language, language_from_env, set_language

# ``language = "ko"`` at the top level of a file that does not parse as TOML.
_TOP_LINE = re.compile(r"""^[ \t]*language[ \t]*=[ \t]*["']([a-z]+)["'][ \t]*(?:#.*)?$""")
_TABLE = re.compile(r"^[ \t]*\[")


def peek_language(path: Path | str, env: Mapping[str, str]) -> Language:
    """The language the config at ``path`` asks for, read before anything is checked."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return language_from_env(env)
    try:
        value: Any = tomllib.loads(text).get("language")
    except tomllib.TOMLDecodeError:
        value = _top_line(text)
    return value if value in LANGUAGES else language_from_env(env)


def use_language_of(path: Path | str, env: Mapping[str, str]) -> Language:
    """Speak the language of the config at ``path`` from now on (the command line, before
    it loads the config; the daemon, before it reloads it)."""
    language = peek_language(path, env)
    set_language(language)
    return language


def _top_line(text: str) -> str | None:
    for line in text.splitlines():
        if _TABLE.match(line):
            return None
        match = _TOP_LINE.match(line)
        if match:
            return match.group(1)
    return None


def with_language(raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """The raw config with ``language`` filled in (from the environment when absent) and
    ``[report] language`` defaulting to it."""
    language = raw.get("language", language_from_env(env))
    result = {**raw, "language": language}
    report = raw.get("report", {})
    if language in LANGUAGES and isinstance(report, dict) and "language" not in report:
        result["report"] = {**report, "language": language}
    return result
