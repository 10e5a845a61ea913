"""Both catalogs are complete and the compiled ones are those of the ``.po`` files.

Extraction runs Babel over ``src/sheetcrm`` as ``python -m tests.support.catalogs``
does (docs/translating.md): every message of the code has a Korean and an English
translation, with the same placeholders as the message; the ``.mo`` files sheetcrm
reads at run time say what the ``.po`` files say.
"""

from __future__ import annotations

import gettext
import string
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog

from sheetcrm.i18n import DOMAIN, LANGUAGES
from tests.support import catalogs


@pytest.fixture(scope="module")
def template() -> Catalog:
    return catalogs.extract()


def ids(message_id: str | tuple[str, ...]) -> tuple[str, ...]:
    return (message_id,) if isinstance(message_id, str) else tuple(message_id)


def fields(text: str) -> set[str]:
    """The placeholder names of a brace-format text (``{value!r}`` -> ``value``)."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(text)
            if name}


def missing(template: Catalog, language: str) -> list[str]:
    """The messages of the code ``language``'s catalog has no translation for."""
    catalog = catalogs.read(language)
    gaps = []
    for message in template:
        if not message.id:
            continue
        found = catalog.get(message.id)
        strings = ids(found.string) if found is not None else ()
        if not strings or not all(strings):
            gaps.append(ids(message.id)[0])
    return gaps


def test_the_code_has_messages_to_translate(template: Catalog) -> None:
    texts = {ids(m.id)[0] for m in template if m.id}
    assert len(texts) > 300
    assert "{column}: {shown} is not {expected}" in texts  # errors.CellError
    assert "a run failed" in texts  # app.alerts.TEXTS, marked with N_()


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_of_the_code_has_a_translation(template: Catalog, language: str
                                                     ) -> None:
    assert missing(template, language) == []


def test_a_new_message_without_a_translation_is_found(template: Catalog) -> None:
    added = Catalog(domain=DOMAIN)
    for message in template:
        added[message.id] = message
    added.add("{count} customers were never told", locations=[("src/sheetcrm/new.py", 1)])
    assert missing(added, "ko") == ["{count} customers were never told"]
    assert missing(added, "en") == ["{count} customers were never told"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_translations_keep_the_placeholders_of_their_message(language: str) -> None:
    wrong = []
    for message in catalogs.read(language):
        if not message.id:
            continue
        for text in ids(message.string):
            if text and fields(text) != fields(ids(message.id)[0]):
                wrong.append((ids(message.id)[0], text))
    assert wrong == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_catalogs_hold_no_message_the_code_no_longer_has(template: Catalog,
                                                             language: str) -> None:
    used = {ids(m.id)[0] for m in template if m.id}
    stale = [ids(m.id)[0] for m in catalogs.read(language) if m.id and ids(m.id)[0] not in used]
    assert stale == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_compiled_catalog_says_what_the_po_file_says(language: str) -> None:
    path = catalogs.mo_path(language)
    with Path(path).open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    different = []
    for message in catalogs.read(language):
        if not message.id:
            continue
        if message.pluralizable:
            singular, plural = message.id
            for n in (1, 2):
                expected = message.string[0 if language == "ko" or n == 1 else 1]
                if compiled.ngettext(singular, plural, n) != expected:
                    different.append(singular)
        elif compiled.gettext(message.id) != message.string:
            different.append(message.id)
    assert different == [], "run: python -m tests.support.catalogs"
