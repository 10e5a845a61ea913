"""The message catalogs, kept with the code: extract, update, compile (Babel).

``python -m tests.support.catalogs`` brings ``src/sheetcrm/locale`` up to date with the
code in one step (docs/translating.md):

1. extract every ``_()``, ``ngettext()`` and ``N_()`` string of ``src/sheetcrm`` (the
   template, never written to disk: it is the code);
2. update ``ko`` and ``en``: new messages are added (English with its msgid as the
   translation, Korean empty, to be written), messages gone from the code are dropped,
   every translation made stays;
3. compile each ``.po`` into the ``.mo`` that ``sheetcrm.i18n`` reads at run time.

``tests/test_catalogs.py`` uses the same functions to check that nothing is missing.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from sheetcrm.i18n import DOMAIN, LANGUAGES, LOCALE_DIR

SOURCE = LOCALE_DIR.parent  # src/sheetcrm
ROOT = SOURCE.parents[1]
KEYWORDS = {"_": None, "ngettext": (1, 2), "N_": None, "in_language": (2,)}


def po_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def mo_path(language: str) -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.mo"


def extract() -> Catalog:
    """Every message of the code, with the files it is used in."""
    template = Catalog(domain=DOMAIN, project="sheetcrm")
    for filename, lineno, message, comments, context in extract_from_dir(
            str(SOURCE), method_map=[("**.py", "python")], keywords=KEYWORDS,
            comment_tags=("TRANSLATORS:",), strip_comment_tags=True):
        where = (f"src/sheetcrm/{filename}", lineno)
        template.add(message, None, [where], auto_comments=comments, context=context)
    return template


def read(language: str) -> Catalog:
    path = po_path(language)
    if not path.exists():
        return Catalog(locale=language, domain=DOMAIN, project="sheetcrm")
    with path.open("rb") as f:
        return read_po(f, locale=language, domain=DOMAIN)


def updated(language: str, template: Catalog) -> Catalog:
    """``language``'s catalog for ``template``: its translations kept, new ones added."""
    old = read(language)
    catalog = Catalog(locale=language, domain=DOMAIN, project="sheetcrm",
                      header_comment=f"# sheetcrm's messages in {language!r} "
                                     "(docs/translating.md).")
    for message in template:
        if not message.id:
            continue
        before = old.get(message.id, context=message.context)
        string = before.string if before is not None else None
        if language == "en" and not _complete(string):
            string = message.id  # English says what the code says
        if not string:
            string = ("",) * catalog.num_plurals if message.pluralizable else ""
        catalog.add(message.id, string, message.locations, auto_comments=message.auto_comments,
                    context=message.context)
    return catalog


def _complete(string: object) -> bool:
    if isinstance(string, tuple | list):
        return all(string)
    return bool(string)


def compiled(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    return buffer.getvalue()


def write(language: str, catalog: Catalog) -> None:
    po_path(language).parent.mkdir(parents=True, exist_ok=True)
    with po_path(language).open("wb") as f:
        write_po(f, catalog, width=100, include_lineno=False, sort_output=True)
    mo_path(language).write_bytes(compiled(read(language)))


def main() -> int:
    template = extract()
    missing = 0
    for language in LANGUAGES:
        catalog = updated(language, template)
        write(language, catalog)
        empty = [m.id for m in catalog if m.id and not _complete(m.string)]
        missing += len(empty)
        print(f"{language}: {len(catalog)} messages, {len(empty)} without a translation")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
