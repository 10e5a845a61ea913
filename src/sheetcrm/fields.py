"""Typed cells: turn the text of one spreadsheet cell into a Python value.

Spreadsheet cells are text, written by people and displayed in a locale. Parsing
them is where most real-world failures happen, so each type accepts the forms an
operator actually sees (Google Sheets' Korean date display, ``O``/``X`` check marks,
``동의``/``미동의``, ``₩12,000`` and ``\\12,000``, which is how a won sign saved by Korean
Excel in CP949 reads) and rejects the rest with a :class:`~sheetcrm.errors.CellError`
that says what was expected. One bad cell marks its row; it never stops the run.

A date written day and month before the year (``6/1/2026``) is the one form that
cannot be read without being told: June 1 in the United States, January 6 in most of
Europe. It is never guessed: the field's ``date_order`` says which (``"M/D/YYYY"`` or
``"D/M/YYYY"``), and without it such a cell is an error that names the setting.

:func:`make_parser` is called once per column and returns a plain callable, so the
per-cell work is a dict lookup for repeated values and a fast path for the common
form otherwise (100k rows x several columns must parse well under a second).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from typing import Any

from sheetcrm.errors import CellError
from sheetcrm.i18n import N_, _

__all__ = ["DATE_ORDERS", "FIELD_TYPES", "SERIAL_RANGE", "Parse", "cell_text", "make_parser",
           "parse_column"]

FIELD_TYPES = ("text", "int", "number", "bool", "date", "datetime", "email", "phone", "list")

#: The orders a date written day and month first may be read in (a field's ``date_order``).
DATE_ORDERS = ("M/D/YYYY", "D/M/YYYY")

#: Google Sheets serial day numbers (days since 1899-12-30) accepted as dates:
#: 10000 is 1927-05-18, 2958465 is 9999-12-31 (the last day Sheets accepts). Sheets
#: itself starts at 1, but a small number in a date column (a bare year ``2025``
#: would be 1905-07-17) is far likelier a typo than a real date, so it is an error.
SERIAL_RANGE = (10000, 2958465)

#: How many distinct raw cells each parser remembers before starting over.
MEMO_LIMIT = 4096

Parse = Callable[[str], Any]
_Convert = Callable[[str], Any]  # receives stripped, non-blank text; raises ValueError

_SHEETS_EPOCH = dt.datetime(1899, 12, 30)
_MS_PER_DAY = 86_400_000

#: What a column of each type takes, in the operator's language where shown
#: (marked here, translated when a cell fails: the language is set after import).
EXPECTED = {
    "text": N_("text"),
    "int": N_("a whole number like 42, 007 or 1,234"),
    "number": N_("a number like 12.5, 1,234.5, ₩12,000, \\12,000, 12,000원 or 15%"),
    "bool": N_("yes or no, like TRUE/FALSE, O/X, 예/아니요, 동의/미동의, V, Y/N, 1/0 or ✅/❌"),
    "date": N_("a date like 2025-06-01, 2025. 6. 1. or 2025/06/01"),
    "datetime": N_(
        "a date and time like 2025-06-01 15:04, 2025. 6. 1. 오후 3:04:05 "
        "or 2025-06-01T15:04:05+09:00"
    ),
    "email": N_("an email address like name@example.com"),
    "phone": N_("a phone number like 010-1234-5678 or +82 10 1234 5678 (7 to 15 digits)"),
    "list": N_("a list of items separated by commas"),
}


def make_parser(type_: str, *, column: str, tz: dt.tzinfo, date_order: str | None = None,
                setting: str | None = None) -> Parse:
    """Return ``parse(raw) -> value`` for one column of type ``type_``.

    Blank cells (empty after stripping) give ``None`` for every type. A cell that does
    not parse raises ``CellError(column, raw, expected)``. The per-type function is
    chosen here, once, so the returned callable does no dispatching per cell.

    ``date_order`` (one of ``DATE_ORDERS``) lets a date or datetime column read
    ``6/1/2026``; ``setting`` is where the operator sets it, named in the error a cell
    like that gives without it (by default "the field's date_order"). What the column
    expects is put in words when a cell fails, in the language spoken then.
    """
    if type_ not in _CONVERTERS:
        raise ValueError(_("unknown field type {type}; valid types: {types}", type=repr(type_),
                           types=", ".join(FIELD_TYPES)))
    if date_order is not None and date_order not in DATE_ORDERS:
        raise ValueError(_("unknown date order {order}; valid: {orders}",
                           order=repr(date_order), orders=", ".join(DATE_ORDERS)))
    def expected() -> str:
        if date_order is not None and type_ in ("date", "datetime"):
            return _with_order(type_, date_order)
        return _(EXPECTED[type_])

    if type_ in ("date", "datetime"):
        convert = _CONVERTERS[type_](tz, date_order)
    else:
        convert = _CONVERTERS[type_](tz)
    parse = _guarded(convert, column, expected, setting)
    if type_ in _MEMOISED:
        parse = _memoised(parse)
    return parse


def parse_column(parse: Parse, cells: list[str], type_: str) -> list[Any]:
    """Every cell of a column of type ``type_``, typed by ``parse`` in one pass.

    A column's cells repeat (dates, yes/no, amounts, course names): each distinct text
    is parsed once and the column is filled from those results at C speed, so a column
    costs one Python call per distinct value rather than per cell. Only for types
    whose values are immutable (not ``list``), since equal cells then share a value.
    Text, email and phone columns, whose cells rarely repeat, are checked at C speed
    (``map`` over the stripped cells, the address or number pattern's own
    ``fullmatch``). ``parse`` is ``make_parser(type_, ...)``'s. Raises CellError as
    ``parse`` does, for some bad cell of the column.
    """
    if type_ == "list":
        return [parse(cell) for cell in cells]
    if type_ in ("text", "email", "phone"):
        texts = list(map(str.strip, cells))
        check = _EMAIL_RE if type_ == "email" else _PHONE_RE if type_ == "phone" else None
        if check is not None and not all(map(check.fullmatch, filter(None, texts))):
            return [parse(cell) for cell in cells]  # the first bad cell raises
        if type_ == "text":  # a repeating text (course names) is held once
            texts = share_repeats(texts)
        return [text or None for text in texts]
    distinct = set(cells)
    if 2 * len(distinct) > len(cells):  # mostly unique (phone numbers): nothing to share
        return [parse(cell) for cell in cells]
    parsed = {text: parse(text) for text in distinct}
    return list(map(parsed.__getitem__, cells))


def share_repeats(texts: list[str]) -> list[str]:
    """``texts`` with equal strings made one object, when at least half repeat (each
    cell read from a file is a string of its own: at 200k rows a column of a few
    distinct texts held 200k copies)."""
    shared = dict(zip(texts, texts, strict=True))
    if 2 * len(shared) <= len(texts):
        return list(map(shared.__getitem__, texts))
    return texts


def cell_text(value: Any) -> str:
    """The text a value from outside (a config literal, a webhook's JSON) shows in a cell.

    The inverse of parsing for the values JSON and TOML carry: ``true`` is ``TRUE``
    (what Sheets and Excel show for a checkbox), a whole float has no ``.0``, a list
    is comma-separated (as the ``list`` type reads it), None is blank. An object has
    no cell text: ValueError.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(_("{value} is not a number a cell can hold", value=repr(value)))
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list | tuple):
        return ", ".join(text for text in map(cell_text, value) if text)
    raise ValueError(_("an object ({kind}) has no cell text", kind=type(value).__name__))


def _guarded(convert: _Convert, column: str, expected: Callable[[], str],
             setting: str | None) -> Parse:
    """Wrap ``convert`` with the blank check and the translation to CellError."""

    def parse(raw: str) -> Any:
        text = raw.strip()
        if not text:
            return None
        try:
            return convert(text)
        except _NeedsOrder as exc:
            fix = _('a date like {value} needs {setting} set to "M/D/YYYY" (month first) '
                    'or "D/M/YYYY" (day first)', value=exc,
                    setting=setting or _("the field's date_order"))
            raise CellError(column, raw, expected(), fix) from None
        except (ValueError, OverflowError):
            raise CellError(column, raw, expected()) from None

    return parse


def _with_order(type_: str, order: str) -> str:
    """What a date or datetime column expects once its ``date_order`` is set."""
    example = "6/1/2025" if order == "M/D/YYYY" else "1/6/2025"
    if type_ == "date":
        return _("a date like 2025-06-01, 2025. 6. 1. or {example} ({order})",
                 example=example, order=order)
    return _("a date and time like 2025-06-01 15:04, 2025. 6. 1. 오후 3:04:05 "
             "or {example} 15:04 ({order})", example=example, order=order)


def _memoised(parse: Parse) -> Parse:
    """Remember results per raw text: dates, bools and amounts repeat heavily in sheets.

    Only used for types whose values are immutable, so sharing a result is safe. The
    memo is cleared when full, which bounds memory without any bookkeeping per hit.
    Failures are not remembered; they raise again (and are rare).
    """
    memo: dict[str, Any] = {"": None}
    missing = object()

    def parse_memoised(raw: str) -> Any:
        value = memo.get(raw, missing)
        if value is missing:
            value = parse(raw)
            if len(memo) >= MEMO_LIMIT:
                memo.clear()
            memo[raw] = value
        return value

    return parse_memoised


# --- text, list, email, phone ------------------------------------------------------


def _text(tz: dt.tzinfo) -> _Convert:
    return str


_LIST_SEP = re.compile(r"[,;\r\n]")


def _list(tz: dt.tzinfo) -> _Convert:
    """Items split on commas, semicolons or line breaks (Alt+Enter inside a cell)."""

    def convert(text: str) -> list[str]:
        return [item for item in (part.strip() for part in _LIST_SEP.split(text)) if item]

    return convert


_EMAIL_ATOM = r"[^@\s,;<>()\[\]\\\".]+"
_EMAIL_RE = re.compile(rf"[^@\s,;<>()\[\]\\\"]+@(?:{_EMAIL_ATOM}\.)+{_EMAIL_ATOM}")


def _email(tz: dt.tzinfo) -> _Convert:
    """A pragmatic check (one @, a dotted domain, no spaces), not RFC 5322.

    The address is returned as written: case matters to nobody but the operator, who
    should recognise it in the sheet.
    """

    def convert(text: str) -> str:
        if _EMAIL_RE.fullmatch(text) is None:
            raise ValueError(text)
        return text

    return convert


# 7 to 15 digits (E.164's most), each followed by any separators; an optional + first.
_PHONE_RE = re.compile(r"\+?[\s().\-]*(?:\d[\s().\-]*){7,15}", re.ASCII)


def _phone(tz: dt.tzinfo) -> _Convert:
    """Phone numbers stay text so leading zeros (010-..., 02-...) survive.

    At most 15 digits, the E.164 maximum, so a date or an amount is not mistaken
    for a number to call.
    """

    def convert(text: str) -> str:
        if _PHONE_RE.fullmatch(text) is None:
            raise ValueError(text)
        return text

    return convert


# --- int, number, bool ---------------------------------------------------------------

_GROUPED_INT = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+", re.ASCII)
_INTEGRAL = re.compile(r"([+-]?[\d,]+)\.0+", re.ASCII)


def _int(tz: dt.tzinfo) -> _Convert:
    """Whole numbers, with thousands separators; ``3.00`` (a number format) is 3."""

    def convert(text: str) -> int:
        if text.isascii() and "_" not in text:
            try:
                return int(text)
            except ValueError:
                pass
        if _GROUPED_INT.fullmatch(text):
            return int(text.replace(",", ""))
        integral = _INTEGRAL.fullmatch(text)
        if integral:
            return convert(integral.group(1))
        raise ValueError(text)

    return convert


# ``\`` is the won sign as Korean Excel saves it in CP949 (where 0x5C shows as ₩).
_AMOUNT_RE = re.compile(
    r"(?P<sign>[+-]?)\s*(?:[₩￦$€£¥\\]\s*)?(?P<sign2>[+-]?)"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d*)?|\.\d+)"
    r"\s*(?:원|%)?",
    re.ASCII,
)


def _number(tz: dt.tzinfo) -> _Convert:
    """Floats, also as shown with currency and thousands separators.

    ``15%`` gives 15.0, not 0.15: the operator compares it with what the sheet shows
    (``discount >= 10``), not with the fraction Sheets stores behind it.
    """

    def convert(text: str) -> float:
        if text.isascii() and "_" not in text:
            try:
                value = float(text)
            except ValueError:
                pass
            else:
                if math.isfinite(value):
                    return value
                raise ValueError(text)
        match = _AMOUNT_RE.fullmatch(text)
        if match is None or (match["sign"] and match["sign2"]):
            raise ValueError(text)
        value = float(match["num"].replace(",", ""))
        return -value if "-" in (match["sign"], match["sign2"]) else value

    return convert


# ``V`` is a check mark typed as a letter, as in a consent column of V and blanks: a
# blank reads as no, as every blank cell does in a condition.
_TRUE = ("true", "o", "○", "⭕", "예", "네", "y", "yes", "1", "✓", "✔", "☑", "✅", "참",
         "동의", "v")
_FALSE = ("false", "x", "×", "❌", "✗", "✘", "아니오", "아니요", "n", "no", "0", "☐", "거짓",
          "미동의", "비동의")
_BOOLS = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}


def _bool(tz: dt.tzinfo) -> _Convert:
    """Check marks as people type them; anything else is an error, never False.

    Case is ignored and the emoji variation selector (U+FE0F, as in ``✔️``) dropped.
    """

    def convert(text: str) -> bool:
        value = _BOOLS.get(text)
        if value is None:
            value = _BOOLS.get(text.replace("\ufe0f", "").lower())
            if value is None:
                raise ValueError(text)
        return value

    return convert


# --- date, datetime ------------------------------------------------------------------

# 2025-06-01, 2025. 6. 1., 2025.6.1, 2025/6/1, 2025년 6월 1일, each with an optional
# weekday as Sheets can display it: (일), 일요일.
_DATE_RE = re.compile(
    r"(?P<y>\d{4})\s*"
    r"(?:(?P<sep>[./-])\s*(?P<m>\d{1,2})\s*(?P=sep)\s*(?P<d>\d{1,2})\.?"
    r"|년\s*(?P<km>\d{1,2})\s*월\s*(?P<kd>\d{1,2})\s*일)"
    r"(?:\s*\(?[월화수목금토일](?:요일)?\)?)?",
    re.ASCII,
)
# 15:04, 15:04:05.123, 오후 3:04:05, 3:04 PM
_TIME_RE = re.compile(
    r"(?:(?P<pre>오전|오후|am|pm)\s*)?"
    r"(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,6}))?)?"
    r"(?:\s*(?P<post>오전|오후|am|pm))?",
    re.IGNORECASE | re.ASCII,
)
_SERIAL_RE = re.compile(r"\d{1,7}(?:\.\d+)?", re.ASCII)
# 6/1/2026, 6.1.2026, 6-1-2026: day and month first, read by the field's date_order.
_DAY_MONTH_RE = re.compile(
    r"(?P<a>\d{1,2})\s*(?P<sep>[./-])\s*(?P<b>\d{1,2})\s*(?P=sep)\s*(?P<y>\d{4})\.?",
    re.ASCII,
)


class _NeedsOrder(ValueError):
    """A date like 6/1/2026 in a column whose field has no ``date_order``."""


def _date(tz: dt.tzinfo, order: str | None = None) -> _Convert:
    """Dates in every form a Korean-locale sheet shows, plus serial day numbers.

    Date-time text in a date column keeps its date, seen in ``tz`` when it carries an
    offset (``2025-06-01T23:30Z`` is June 2 in Seoul).
    """
    to_datetime = _datetime(tz, order)

    def convert(text: str) -> dt.date:
        if len(text) == 10 and text[4] == "-":
            return dt.date.fromisoformat(text)  # the common case; invalid ISO is an error
        split = _split_date(text, order)
        if split is not None and not split[1]:
            return split[0]
        serial = _serial(text)
        if serial is not None:
            return serial.date()
        return to_datetime(text).date()

    return convert


def _datetime(tz: dt.tzinfo, order: str | None = None) -> _Convert:
    """Timezone-aware datetimes in ``tz``; naive text is wall time in ``tz``.

    Offsets (and ``Z``) are converted to ``tz``. A date alone is midnight.
    """
    localize = _localizer(tz)

    def convert(text: str) -> dt.datetime:
        value = _iso_datetime(text) or _split_datetime(text, order) or _serial(text)
        if value is None:
            raise ValueError(text)
        if value.tzinfo is None:
            return localize(value)
        return value.astimezone(tz)

    return convert


def _iso_datetime(text: str) -> dt.datetime | None:
    """ISO 8601 with ``T`` or a space, optional seconds, fraction and offset (fast path)."""
    if len(text) < 10 or text[4] != "-" or not text[:4].isdigit():
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None  # maybe 2025-6-1 15:04, which the display parser reads


def _localizer(tz: dt.tzinfo) -> Callable[[dt.datetime], dt.datetime]:
    """Attach ``tz`` to a naive wall time (pytz zones need ``localize``, not replace)."""
    localize = getattr(tz, "localize", None)
    if localize is not None:
        return localize  # type: ignore[no-any-return]
    return lambda value: value.replace(tzinfo=tz)


def _split_date(text: str, order: str | None) -> tuple[dt.date, str] | None:
    """The date at the start of ``text`` and the rest; None if it does not start with one.

    A date with the year last is read in ``order``; without one it raises _NeedsOrder.
    """
    match = _DATE_RE.match(text)
    if match is not None:
        month, day = (match["m"], match["d"]) if match["sep"] else (match["km"], match["kd"])
        return dt.date(int(match["y"]), int(month), int(day)), text[match.end() :].strip()
    match = _DAY_MONTH_RE.match(text)
    if match is None:
        return None
    rest = text[match.end() :].strip()
    if rest and not rest[0].isdigit() and _TIME_RE.fullmatch(rest) is None:
        return None  # 6/1/2026abc: not a date that only lacks its order
    if order is None:
        raise _NeedsOrder(match[0])
    first, second = int(match["a"]), int(match["b"])
    month, day = (first, second) if order == "M/D/YYYY" else (second, first)
    return dt.date(int(match["y"]), month, day), rest


def _split_datetime(text: str, order: str | None) -> dt.datetime | None:
    """Display forms: ``2025. 6. 1. 오후 3:04:05``, ``2025/06/01 15:04``, ``20250601``,
    and with ``order`` ``6/1/2025 3:04:05 PM``."""
    if len(text) == 8 and text.isdigit() and int(text) > SERIAL_RANGE[1]:
        return dt.datetime(int(text[:4]), int(text[4:6]), int(text[6:]))
    split = _split_date(text, order)
    if split is None:
        return None
    day, rest = split
    if not rest:
        return dt.datetime(day.year, day.month, day.day)
    return dt.datetime.combine(day, _parse_time(rest))


def _parse_time(text: str) -> dt.time:
    """Clock time, 24-hour or 12-hour with 오전/오후 (AM/PM) before or after it."""
    match = _TIME_RE.fullmatch(text)
    if match is None or (match["pre"] and match["post"]):
        raise ValueError(text)
    hour = int(match["h"])
    half = (match["pre"] or match["post"] or "").lower()
    if half:
        if not 1 <= hour <= 12:
            raise ValueError(text)
        hour = hour % 12 + (12 if half in ("오후", "pm") else 0)
    micro = int((match["f"] or "0").ljust(6, "0"))
    return dt.time(hour, int(match["mi"]), int(match["s"] or 0), micro)


def _serial(text: str) -> dt.datetime | None:
    """A Google Sheets serial number (days since 1899-12-30) as naive wall time.

    The fraction is the time of day, rounded to the millisecond so binary float noise
    (15:04:04.999999) does not show.
    """
    if _SERIAL_RE.fullmatch(text) is None:
        return None
    days = float(text)
    if not SERIAL_RANGE[0] <= days < SERIAL_RANGE[1] + 1:  # the last day has hours too
        return None
    return _SHEETS_EPOCH + dt.timedelta(milliseconds=round(days * _MS_PER_DAY))


_CONVERTERS: dict[str, Callable[..., _Convert]] = {
    "text": _text,
    "int": _int,
    "number": _number,
    "bool": _bool,
    "date": _date,
    "datetime": _datetime,
    "email": _email,
    "phone": _phone,
    "list": _list,
}
# Immutable results that repeat across rows; emails and phones are mostly unique.
_MEMOISED = frozenset({"int", "number", "bool", "date", "datetime"})
