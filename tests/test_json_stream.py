"""``--json`` is written as it is made: the document parses to the same value as the
whole object dumped at once, whatever the lists' lengths."""

from __future__ import annotations

import io
import json
from typing import Any

from sheetcrm.cli.streaming import _BATCH, Rows, write_json


def _written(members: dict[str, Any]) -> str:
    out = io.StringIO()
    write_json(members.items(), out)
    return out.getvalue()


def test_a_streamed_document_parses_to_the_object_it_was_made_from() -> None:
    rows = [{"key": f"고객{i}@example.com", "n": i, "note": "줄\n바꿈 \"따옴표\""}
            for i in range(2 * _BATCH + 3)]
    members = {"command": "plan", "summary": {"rows_read": 3, "held": {"x": 1}},
               "empty": Rows(iter(())), "one": Rows([{"a": None}]),
               "many": Rows(iter(rows)), "recovered": []}
    plain = {k: (list(v.items) if isinstance(v, Rows) else v) for k, v in members.items()}
    members["many"] = Rows(iter(rows))
    members["empty"] = Rows(iter(()))
    assert json.loads(_written(members)) == plain


def test_each_item_of_a_long_list_is_one_line() -> None:
    text = _written({"sends": Rows({"key": str(i)} for i in range(5))})
    assert text.splitlines()[2:7] == [f'    {{"key": "{i}"}}' + ("," if i < 4 else "")
                                      for i in range(5)]


def test_an_empty_object_is_still_json() -> None:
    assert json.loads(_written({})) == {}
