"""The text-message channels are documented: every key of ``solapi`` and ``nhn`` in the
README's channel table, and docs/kakao.md from an account to the first AlimTalk."""

from __future__ import annotations

from pathlib import Path

import pytest

from sheetcrm.config.channels import NhnSettings, SolapiSettings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
GUIDE = (ROOT / "docs" / "kakao.md").read_text(encoding="utf-8")
KEYS = sorted({f.alias or name for model in (SolapiSettings, NhnSettings)
               for name, f in model.model_fields.items()})


@pytest.mark.parametrize("key", KEYS)
def test_every_text_channel_key_is_in_the_readme(key: str) -> None:
    assert f"`{key}`" in README


@pytest.mark.parametrize("words", ["발신번호", "template", "IP", "pf_id", "sender_key",
                                   "opt_out_number", "delivered", "(광고)"])
def test_the_guide_covers_the_way_to_the_first_alimtalk(words: str) -> None:
    assert words in GUIDE
