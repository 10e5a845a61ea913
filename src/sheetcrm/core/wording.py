"""A message sheetcrm wrote in one language, said again in the other.

The error cell holds what this run finds wrong with the row, in the language of the
run that wrote it. A run in the other language (the operator switched ``language``,
or a second machine speaks English) must still tell that cell for sheetcrm's own
when its ledger is lost (``projection.written_by_sheetcrm``), so it asks how its own
messages read in the other language: each message is matched against the catalog's
forms of the language it is in (its ``{placeholders}`` match any text), the values
found are themselves said again when they are messages too (what a column takes, in
a cell error), and the other language's form is filled with them.

This reads only sheetcrm's own catalogs, the ones ``_()`` uses (the compiled ``.mo``
files), so it knows exactly the messages sheetcrm can write; a text that is none of
them gives None. A message made of two joined by ``"; "`` (a cell error and its
fix) is said again part by part.
"""

from __future__ import annotations

import re
from functools import cache

from sheetcrm.i18n import Language, translations

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{(\w+)\}")
_MAX_DEPTH = 4
_WORD = re.compile(r"\w")
MIN_LETTERS = 4  # letters a form must hold besides its placeholders to be matched


@cache
def _forms(source: Language, target: Language) -> tuple[tuple[re.Pattern[str], str], ...]:
    """(a message's form in ``source`` as a pattern, its form in ``target``), the
    longest forms first (the most particular message wins)."""
    src, dst = translations(source), translations(target)
    # Every message sheetcrm has: the English catalog holds each (as its own
    # translation); gettext keeps them in ``_catalog`` (plural forms are tuples).
    msgids = [k for k in getattr(translations("en"), "_catalog", {}) if isinstance(k, str)
              and k]
    forms = []
    for msgid in msgids:
        said, wanted = src.gettext(msgid), dst.gettext(msgid)
        if len(_WORD.findall(_PLACEHOLDER.sub("", said))) < MIN_LETTERS:
            continue  # "{n} {reason}" matches any text with a space: not a form to go by
        pattern = _pattern(said)
        if pattern is not None:
            forms.append((len(said), pattern, wanted))
    forms.sort(key=lambda f: -f[0])
    return tuple((pattern, wanted) for _size, pattern, wanted in forms)


def _pattern(form: str) -> re.Pattern[str] | None:
    parts, seen, pos = [], set(), 0
    for m in _PLACEHOLDER.finditer(form):
        parts.append(re.escape(form[pos:m.start()]))
        name = m.group(1)
        if name is None:
            parts.append(re.escape(m.group(0)[0]))
        elif name in seen:
            parts.append(f"(?P={name})")
        else:
            seen.add(name)
            parts.append(f"(?P<{name}>.+?)")
        pos = m.end()
    parts.append(re.escape(form[pos:]))
    try:
        return re.compile("".join(parts), re.DOTALL)
    except re.error:
        return None


def said_in(text: str, source: Language, target: Language, depth: int = 0) -> str | None:
    """``text``, one of sheetcrm's messages in ``source``, as ``target`` says it.

    A value found in a message is said again when it is a message itself without
    values of its own; one that holds ``"; "`` must be (else the ``"; "`` belongs to
    the text, joining two messages, and the match is the wrong one).
    """
    if source == target:
        return text
    if depth > _MAX_DEPTH:
        return None
    for pattern, wanted in _forms(source, target):
        if depth and pattern.groups:
            # A value inside a message is said again only when it is a whole message
            # with no values of its own (what a column takes): a form with
            # placeholders would match almost any text and garble it.
            continue
        m = pattern.fullmatch(text)
        if m is None:
            continue
        values: dict[str, str] = {}
        for name, value in m.groupdict().items():
            inner = said_in(value, source, target, depth + 1)  # one message, not two
            if inner is None and "; " in value:
                break
            values[name] = value if inner is None else inner
        else:
            try:
                return wanted.format(**values) if values else wanted
            except (KeyError, IndexError, ValueError):
                continue
    if depth:
        return None
    start = 0
    while (cut := text.find("; ", start)) >= 0:
        left = said_in(text[:cut], source, target)
        right = said_in(text[cut + 2:], source, target) if left else None
        if left is not None and right is not None:
            return f"{left}; {right}"
        start = cut + 2
    return None
