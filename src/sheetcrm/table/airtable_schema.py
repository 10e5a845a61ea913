"""An Airtable base's schema through the meta API: its tables and their fields, a new
table, a new field; and rows added to a table.

``sheetcrm init`` needs what the records API cannot give: the names of a table's
fields in their order (a record leaves its empty fields out, so a listing never
names a column nobody filled in), and tables and fields created for the rule tabs
and the columns sheetcrm writes. The requests go through the same paced, retrying
transport as the table's (``airtable.base_pacer``, ``airtable.retry_policy``), and
every failure becomes the same ``AirtableError`` with the same words. The token is
never shown. The meta API cannot delete a table: replacing one is left to the
operator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, TypeVar

from pyairtable import Api
from pyairtable.utils import chunked
from requests.exceptions import RequestException

from sheetcrm.http import RetryAdapter
from sheetcrm.i18n import _
from sheetcrm.table.airtable import (
    BATCH_SIZE,
    DEFAULT_ENDPOINT,
    TIMEOUT,
    base_pacer,
    retry_policy,
)
from sheetcrm.table.airtable_errors import Where, explain, is_monthly_cap

T = TypeVar("T")

class AirtableSchema:
    """The tables of one base, read and added to through the meta API."""

    def __init__(self, *, token: str, base: str, endpoint: str | None = None) -> None:
        self.base = base
        self.endpoint = endpoint or DEFAULT_ENDPOINT
        self._transport = RetryAdapter(retry_policy(), pacer=base_pacer(), final=is_monthly_cap)
        self._api = Api(token, timeout=TIMEOUT,  # type: ignore[arg-type]  # floats work
                        retry_strategy=None, endpoint_url=self.endpoint)
        self._api.session.mount("https://", self._transport)
        self._api.session.mount("http://", self._transport)

    def __repr__(self) -> str:  # never the token
        return f"<AirtableSchema {self.base}>"

    def tables(self) -> list[dict[str, Any]]:
        """Every table of the base: ``{"id", "name", "fields": [{"name", "type"}, ...]}``."""
        url = self._api.build_url("meta/bases", self.base, "tables")
        answer = self._call(_("list the tables"), "", partial(self._api.request, "GET", url))
        return list(answer.get("tables", []))

    def table(self, name_or_id: str) -> dict[str, Any] | None:
        return next((t for t in self.tables() if name_or_id in (t.get("id"), t.get("name"))),
                    None)

    def create_table(self, name: str, fields: Sequence[tuple[str, str]]) -> None:
        """A new table ``name`` with ``fields`` (name, type); the first is its primary field."""
        url = self._api.build_url("meta/bases", self.base, "tables")
        body = {"name": name, "fields": [{"name": f, "type": t} for f, t in fields]}
        self._call(_("create the table"), name, partial(self._api.request, "POST", url,
                                                         json=body))

    def add_field(self, table: str, name: str, type_: str) -> None:
        """Field ``name`` of ``type_`` added to ``table`` (its id or name)."""
        url = self._api.build_url("meta/bases", self.base, "tables", table, "fields")
        self._call(_("add the field {name!r}", name=name), table,
                   partial(self._api.request, "POST", url, json={"name": name, "type": type_}))

    def add_rows(self, table: str, header: Sequence[str], rows: Sequence[Sequence[str]]
                 ) -> None:
        """``rows`` as records of ``table`` (blank cells left out), 10 per request."""
        api_table = self._api.table(self.base, table)
        records: list[dict[str, Any]] = [
            {name: cell for name, cell in zip(header, row, strict=False) if cell}
                   for row in rows]
        for chunk in chunked(records, BATCH_SIZE):
            self._call(_("create records"), table,
                       partial(api_table.batch_create, chunk, typecast=True))

    def _call(self, action: str, table: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except (RequestException, TypeError, ValueError, KeyError) as exc:
            source = (_("Airtable base {base} table {table!r}", base=self.base, table=table)
                      if table else _("Airtable base {base}", base=self.base))
            where = Where(source, self.endpoint, self.base, table, TIMEOUT)
            raise explain(exc, action, where, max(self._transport.last_attempts - 1, 0)
                          ) from None
