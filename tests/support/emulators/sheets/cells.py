"""Cells as the Sheets emulator stores them, and how the API shows and parses them.

A cell is text (``str``), a ``Typed`` value with its number format, or empty. Apart
from the grid so that the locale's display forms (``render``) and what typing a
string does (``user_entered``, ``raw_cell``) can be read, and checked, on their own:
these are what the backend's correctness depends on most.
"""

from __future__ import annotations

import ast
import datetime as dt
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_EPOCH = dt.datetime(1899, 12, 30)


@dataclass(frozen=True, slots=True)
class Typed:
    """A cell that is not plain text.

    ``value`` is a number (dates are serial day numbers), a bool, or for a formula
    its computed display value. ``fmt`` is the number format: ``""`` (automatic),
    ``"#,##0"`` (or ``"#,##0.00"``, as many decimals as zeros), ``"₩#,##0"``, ``"0%"``,
    a run of zeros such as ``"000"`` (pads), ``"DATE"`` or ``"DATE_TIME"`` (the
    locale's form) or ``"yyyy-mm-dd"`` (a date typed that way keeps that form).
    """

    value: float | bool | str
    fmt: str = ""
    formula: str | None = None


Cell = str | Typed | None  # None (or "") is an empty cell


def render(cell: Cell, option: str = "FORMATTED_VALUE", dates: str = "SERIAL_NUMBER",
           locale: str = "ko_KR") -> Any:
    """A cell as the API returns it under ``valueRenderOption`` / ``dateTimeRenderOption``."""
    if cell is None or cell.__class__ is str:
        return cell if cell is not None else ""
    assert isinstance(cell, Typed)
    if cell.formula is not None and option == "FORMULA":
        return cell.formula
    value = cell.value
    if option == "FORMATTED_VALUE" or isinstance(value, str):
        return _formatted(cell, locale)
    if isinstance(value, bool):
        return value
    if cell.fmt in DATE_FORMATS and dates == "FORMATTED_STRING":
        return _formatted(cell, locale)
    return int(value) if float(value).is_integer() else value


DATE_FORMATS = ("DATE", "DATE_TIME", "yyyy-mm-dd")
_GROUPED = re.compile(r"(₩?)#,##0(?:\.(0+))?")


def _formatted(cell: Typed, locale: str) -> str:
    value, fmt = cell.value, cell.fmt
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if fmt == "yyyy-mm-dd":
        moment = _EPOCH + dt.timedelta(days=round(value))
        return f"{moment:%Y-%m-%d}"
    if fmt in ("DATE", "DATE_TIME"):
        return _date_text(value, fmt == "DATE_TIME", locale)
    grouped = _GROUPED.fullmatch(fmt)
    if grouped:
        decimals = len(grouped[2] or "")
        return f"{grouped[1]}{value:,.{decimals}f}"
    if fmt == "0%":
        return f"{value * 100:.0f}%"
    if fmt and set(fmt) == {"0"}:
        return f"{int(value):0{len(fmt)}d}"
    return str(int(value)) if float(value).is_integer() else format(value, ".10g")


def _date_text(serial: float, with_time: bool, locale: str) -> str:
    moment = _EPOCH + dt.timedelta(milliseconds=round(serial * 86_400_000))
    if locale.startswith("en"):
        day = f"{moment.month}/{moment.day}/{moment.year}"
        return f"{day} {moment:%H:%M:%S}".lstrip("0") if with_time else day
    day = f"{moment.year}. {moment.month}. {moment.day}"
    if not with_time:
        return day
    half = "오전" if moment.hour < 12 else "오후"
    return f"{day} {half} {(moment.hour % 12) or 12}:{moment:%M:%S}"


_NUMBER = re.compile(r"(?P<won>₩)?(?P<sign>[-+]?)(?P<int>\d{1,3}(?:,\d{3})+|\d+)"
                     r"(?P<frac>\.\d+)?(?P<pct>%)?")
_DATE = re.compile(
    r"(?P<y>\d{4})(?:-(?P<m1>\d{1,2})-(?P<d1>\d{1,2})|/(?P<m2>\d{1,2})/(?P<d2>\d{1,2})"
    r"|\.\s*(?P<m3>\d{1,2})\.\s*(?P<d3>\d{1,2})\.?)"
    r"(?:\s+(?:(?P<half>오전|오후)\s*)?(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2}))?)?"
)


def user_entered(text: str) -> Cell:
    """A string as Sheets stores it when typed into a cell (ko_KR locale)."""
    if text == "":
        return None
    if text.startswith("'"):
        return text[1:]
    if text.startswith("="):
        return Typed(_formula_value(text), formula=text)
    stripped = text.strip()
    if stripped.upper() in ("TRUE", "FALSE"):
        return Typed(stripped.upper() == "TRUE")
    number = _NUMBER.fullmatch(stripped)
    if number:
        value = float(number["int"].replace(",", "") + (number["frac"] or ""))
        value = -value if number["sign"] == "-" else value
        if number["pct"]:
            return Typed(value / 100, "0%")
        fmt = ""
        if number["won"] or "," in number["int"]:  # typed grouped: keeps its decimals
            fmt = "₩" * bool(number["won"]) + "#,##0" + (
                "." + "0" * (len(number["frac"]) - 1) if number["frac"] else "")
        return Typed(value, fmt)
    date = _DATE.fullmatch(stripped)
    if date:
        serial = _serial(date)
        if serial is not None:
            if date["h"]:
                return Typed(serial, "DATE_TIME")
            return Typed(serial, "yyyy-mm-dd" if date["m1"] else "DATE")
    return text


def _serial(match: re.Match[str]) -> float | None:
    month = match["m1"] or match["m2"] or match["m3"]
    day = match["d1"] or match["d2"] or match["d3"]
    hour = int(match["h"] or 0)
    if match["half"]:
        hour = hour % 12 + (12 if match["half"] == "오후" else 0)
    try:
        moment = dt.datetime(int(match["y"]), int(month), int(day), hour,
                             int(match["mi"] or 0), int(match["s"] or 0))
    except ValueError:
        return None
    return (moment - _EPOCH) / dt.timedelta(days=1)


def _formula_value(formula: str) -> float | str:
    """What a formula shows: arithmetic on numbers and ``HYPERLINK``'s label are
    computed; any other formula shows ``#NAME?`` (the emulator has no function library)."""
    link = re.fullmatch(r'=HYPERLINK\("[^"]*"\s*,\s*"([^"]*)"\)', formula, re.IGNORECASE)
    if link:
        return link.group(1)
    try:
        return _arithmetic(ast.parse(formula[1:].strip(), mode="eval").body)
    except (SyntaxError, ValueError, ZeroDivisionError):
        return "#NAME?"


_OPERATORS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _arithmetic(node: ast.expr) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _arithmetic(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_arithmetic(node.left), _arithmetic(node.right))
    raise ValueError("not arithmetic")


def raw_cell(value: Any) -> Cell:
    """A JSON value as stored by valueInputOption=RAW."""
    if isinstance(value, bool):
        return Typed(value)
    if isinstance(value, (int, float)):
        return Typed(float(value))
    text = str(value)
    return text if text else None

