"""``[rules]``: tags, flows and templates kept in tabs of the operator's own sheet.

The section only names the tabs (a Google Sheets tab, an Airtable table, or for CSV a
sibling file ``<tab>.csv`` beside the customer file) and the word an operator types
into a ``상태`` cell to confirm an edit that would message many customers at once.
What the tabs hold is read with the customers, every run (``rule_tabs`` parses it,
``sheetcrm.app.rules`` decides whether it is used). A config gives each of tags,
flows and templates one way only: the tab here, or ``[tags]`` / ``[flows.*]`` / the
``templates`` folder in the file; both at once is refused at load, naming both.
"""

from typing import Literal

from pydantic import Field

from sheetcrm.config.base import Settings

RuleKind = Literal["tags", "flows", "templates"]
KINDS: tuple[RuleKind, ...] = ("tags", "flows", "templates")
DEFAULT_CONFIRM_WORD = "적용"
STATUS_COLUMN = "상태"


class RulesSettings(Settings):
    tags: str | None = Field(None, min_length=1, description="the tab holding the tags")
    flows: str | None = Field(None, min_length=1, description="the tab holding the flows")
    templates: str | None = Field(None, min_length=1,
                                  description="the tab holding the templates")
    confirm_word: str = Field(DEFAULT_CONFIRM_WORD, min_length=1,
                              description="the word that confirms a waiting edit")

    def tabs(self) -> dict[RuleKind, str]:
        """Kind -> tab name, for the kinds kept in the sheet."""
        return {kind: name for kind in KINDS if (name := getattr(self, kind))}
