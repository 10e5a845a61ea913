"""Tables and lines that read well at 80 columns, and in full with ``--wide``.

Rich shares a narrow terminal out by itself, and does it badly for this output: it
cuts names to ambiguous prefixes (``payment_re…``: reminder or reviews?) and squeezes
a reason column until it holds one word per line. So the widths are chosen here,
once, for every command, by what each column holds (``Kind``):

- ``NAME``: a template, flow, step, status or time, always shown whole on one line;
- ``NUMBER``: the same, right-aligned;
- ``KEY``: a row key (an email address): may fold across lines, is never cut;
- ``TEXT``: a reason, an error, a list of tags: wraps at words, and keeps room for
  at least ``least`` characters a line, so a reason reads as a sentence.

Names and numbers take the width they need; keys and texts share what is left,
each growing toward its longest line (on a terminal too narrow even for that, keys
and then texts give way, down to a few characters, before a name folds). Columns
marked ``wide`` only appear with ``--wide``, where nothing wraps and the lines are as
long as the cells make them.
Headers wrap at their spaces. Tables have no vertical rules: three spaces between
columns leave more of a narrow terminal to the cells.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from sheetcrm.cli.base import printable
from sheetcrm.i18n import N_, _

GAP = 3  # the characters between two columns

#: The states and levels the tables show as words (a send's outcome, a delivery, a
#: finding's level, a flow move), marked for the catalogs; ``word`` translates one when
#: shown (``--json`` keeps them as they are, for scripts).
WORDS = (
    N_("pending"), N_("sent"), N_("retry"), N_("failed"), N_("uncertain"), N_("skipped"),
    N_("already claimed"), N_("channel down"), N_("exited"), N_("stopped"), N_("error"),
    N_("warning"), N_("info"), N_("accepted"), N_("delivered"), N_("running"),
    N_("ok"), N_("interrupted"), N_("channel_down"), N_("sending_stopped"),
    N_("not running (died)"), N_("never started"), N_("tags"), N_("flow"), N_("message"),
    N_("event"), N_("test"), N_("enter"), N_("skip"), N_("restored"), N_("active"),
    N_("converted"), N_("replied"), N_("left"), N_("finished"),
)


def word(text: str) -> str:
    """A state or level in the operator's language (itself when it is not one of WORDS)."""
    return _(text) if text else text


class Kind(Enum):
    NAME = "name"
    NUMBER = "number"
    KEY = "key"
    TEXT = "text"


@dataclass(frozen=True)
class Col:
    """One column: its header, what it holds, and whether only ``--wide`` shows it."""

    header: str
    kind: Kind = Kind.NAME
    wide: bool = False
    least: int = 0  # KEY and TEXT: the narrowest it gets while others fit (0: default)


_LEAST = {Kind.KEY: 12, Kind.TEXT: 20}
_FLOOR = {Kind.KEY: 6, Kind.TEXT: 10}  # on a very narrow terminal, before names fold


def table(out: Console, title: str | None, columns: Sequence[Col],
          rows: Iterable[Sequence[str]], *, wide: bool) -> Table:
    """A table of ``rows`` (one cell per column, the ``wide`` ones included) that fits
    ``out``'s width, or, with ``wide``, takes all the width its cells need."""
    shown = [i for i, c in enumerate(columns) if wide or not c.wide]
    cols = [columns[i] for i in shown]
    cells = [[printable(str(row[i])) for i in shown] for row in rows]
    widths = None if wide else _widths(cols, cells, out.width)
    t = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title=title,
              title_justify="left", title_style="bold", header_style="bold")
    for n, c in enumerate(cols):
        t.add_column(c.header, justify="right" if c.kind is Kind.NUMBER else "left",
                     no_wrap=wide, overflow="fold", width=widths[n] if widths else None)
    for row in cells:
        t.add_row(*row)
    return t


def _longest_line(text: str) -> int:
    return max((cell_len(line) for line in text.splitlines()), default=0)


def _longest_word(text: str) -> int:
    return max((cell_len(word) for word in text.split()), default=0)


def _widths(cols: list[Col], cells: list[list[str]], width: int) -> list[int]:
    """Each column's width: names whole, the rest shared out toward each one's need."""
    need = []
    for n, c in enumerate(cols):
        longest = max((_longest_line(row[n]) for row in cells), default=0)
        need.append(max(longest, _longest_word(c.header), 1))
    fixed = [n for n, c in enumerate(cols) if c.kind in (Kind.NAME, Kind.NUMBER)]
    flexible = [n for n in range(len(cols)) if n not in fixed]
    widths = list(need)
    room = width - GAP * (len(cols) - 1) - sum(need[n] for n in fixed)
    for n in flexible:
        widths[n] = min(need[n], cols[n].least or _LEAST[cols[n].kind])
    room -= sum(widths[n] for n in flexible)
    for kind in (Kind.KEY, Kind.TEXT):  # too narrow even so: keys give way first
        for n in flexible:
            if room < 0 and cols[n].kind is kind:
                give = min(-room, widths[n] - min(need[n], _FLOOR[kind]))
                widths[n] -= give
                room += give
    while room > 0:  # fill up toward each column's need, evenly
        growing = [n for n in flexible if widths[n] < need[n]]
        if not growing:
            break
        share = max(1, room // len(growing))
        for n in growing:
            add = min(share, need[n] - widths[n], room)
            widths[n] += add
            room -= add
    return widths


def indented(out: Console, text: str, *, indent: int = 2, style: str | None = None) -> None:
    """A line that wraps under its own start, ``indent`` characters in."""
    out.print(Padding(Text(printable(text), style=style or ""), (0, 0, 0, indent),
                      expand=False))


LABEL = 10  # the width of the labels down the left of ``status``


def labelled(out: Console, label: str, text: str, *, style: str | None = None) -> None:
    """``label`` in a column of its own, ``text`` wrapping beside it (not under it)."""
    grid = Table.grid()
    grid.add_column(width=LABEL, no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(*(Text(printable(cell), style=style or "") for cell in (label, text)))
    out.print(grid)
