"""Expression text to Jinja's syntax tree, with errors that point at the column.

Jinja's own parser reads the text in its expression grammar; only its lexer and
parser are used, nothing is rendered. Jinja reports a syntax error by line only,
which says little about a one-line condition, so the tokens are tracked to put a
caret under the exact spot. A number too long for Python's ``int()`` fails deep in
Jinja's lexer; it is reported here as the number that is too long.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterator

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.lexer import Token, TokenStream, describe_token
from jinja2.parser import Parser

from sheetcrm.errors import RuleError
from sheetcrm.expressions.semantics import SHOWN, shown
from sheetcrm.i18n import _

_ENV = Environment()  # only its lexer and parser are used; nothing is rendered


def parse(source: str, path: str) -> nodes.Expr:
    """Parse with Jinja's expression grammar; syntax errors point at the column."""
    text = re.sub(r"\r\n?", "\n", source)  # as Jinja's lexer does, so offsets agree
    stripped = text.strip()
    if not stripped:
        raise RuleError(_("the expression is empty"), path=path)
    if stripped.startswith("{%"):
        raise RuleError(
            _("statements ({{% ... %}}) are not allowed in expression {source}",
              source=repr(source)), path=path
        )
    if stripped.startswith("{{"):
        raise RuleError(
            _("write the expression {source} without the {{{{ }}}} around it",
              source=repr(source)), path=path
        )
    tokens = _TrackedTokens(text)
    parser = Parser(_ENV, "", state="variable")
    try:
        parser.stream = tokens.stream()  # lexes the first token already
        node = parser.parse_expression()
        if not parser.stream.eos:
            found = parser.stream.current
            what = found.value if found.value not in ("", None) else describe_token(found)
            parser.fail(_("unexpected '{what}' after the end of the expression", what=what))
    except TemplateSyntaxError as exc:
        message = (exc.message or "invalid syntax").replace("end of template", "end of input")
        offset = tokens.error_offset(parser)
        raise RuleError(_syntax_message(text, offset, message), path=path) from None
    except ValueError:
        # Jinja's lexer turns a number token into an int; Python refuses one of more
        # than sys.get_int_max_str_digits() digits, deep inside the lexer.
        number = tokens.last_token()
        digits = sum(ch.isdigit() for ch in number)
        problem = _("a number of {digits} digits is too long (at most {most})",
                    digits=f"{digits:,}", most=f"{sys.get_int_max_str_digits():,}")
        raise RuleError(_syntax_message(text, tokens.last_start(), problem), path=path) from None
    except RecursionError:
        raise RuleError(_("expression {source} is nested too deeply", source=shown(source)),
                        path=path) from None
    return node


class _TrackedTokens:
    """Jinja's token stream over ``text``, remembering where each token starts.

    Jinja reports only line numbers; the offsets let a syntax error show a caret under
    the exact spot, which matters for one-line expressions.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.lexed = 0  # characters consumed by the lexer so far
        self.lex_failed = False
        self._start = 0
        # id(token) -> (token, start); holding the token keeps its id from being reused
        self._starts: dict[int, tuple[Token, int]] = {}

    def stream(self) -> TokenStream:
        return TokenStream(self._tokens(), None, None)

    def _raw(self) -> Iterator[tuple[int, str, str]]:
        try:
            for lineno, kind, value in _ENV.lexer.tokeniter(self.text, None, state="variable"):
                self._start = self.lexed
                self.lexed += len(value)
                yield lineno, kind, value
        except TemplateSyntaxError:
            self.lex_failed = True
            raise

    def _tokens(self) -> Iterator[Token]:
        # wrap() yields at most one token per raw token, right after reading it.
        for token in _ENV.lexer.wrap(self._raw()):
            self._starts[id(token)] = (token, self._start)
            yield token

    def last_start(self) -> int:
        """Where the token the lexer read last starts."""
        return self._start

    def last_token(self) -> str:
        return self.text[self._start : self.lexed]

    def error_offset(self, parser: Parser) -> int:
        if self.lex_failed:
            return self.lexed
        current = parser.stream.current
        token, start = self._starts.get(id(current), (None, self.lexed))
        return start if token is current else self.lexed  # else: the end-of-input token


def _syntax_message(text: str, offset: int, problem: str) -> str:
    """``syntax error in expression '...': problem (line 1, column 7)`` plus a caret."""
    line_start = text.rfind("\n", 0, offset) + 1
    line_end = text.find("\n", offset)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    lineno = text.count("\n", 0, offset) + 1
    column = offset - line_start + 1
    before, after = line[: column - 1], line[column - 1 :]
    if len(before) > SHOWN // 2:  # a long line: show the part around the caret
        before = "…" + before[-(SHOWN // 2) :]
    if len(after) > SHOWN // 2:
        after = after[: SHOWN // 2] + "…"
    pad = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in before)
    said = _("syntax error in expression {source}: {problem} (line {line}, column {column})",
             source=shown(text), problem=problem, line=lineno, column=column)
    return f"{said}\n    {before}{after}\n    {' ' * pad}^"
