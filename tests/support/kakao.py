"""The shipped sample pointed at a loopback Solapi or NHN Cloud (``support.emulators``).

``use_solapi`` turns the sample's one channel into Solapi SMS/LMS, or AlimTalk with
``alimtalk=True`` (every template gets an approved id; ads, which AlimTalk cannot
carry, become informational); ``use_nhn`` turns it into NHN Cloud AlimTalk. The
channel keeps its name (``email``), so every flow of the sample sends through it to
the ``phone`` field's numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

from tests.support.emulators.nhn import NhnEmulator
from tests.support.emulators.solapi import SolapiEmulator
from tests.support.sample import ROOT

PF_ID = "KA01PF0000000001"
TEMPLATE_NAMES = sorted(p.name[:-3] for p in (ROOT / "templates").glob("*.j2"))


def template_ids() -> dict[str, str]:
    """Template name -> the id the emulators know it by (the same text, in lower case)."""
    return {name: f"T{i:03d}" for i, name in enumerate(TEMPLATE_NAMES)}


def _templates_line() -> str:
    pairs = ", ".join(f'"{name}" = "{code}"' for name, code in template_ids().items())
    return f"templates = {{ {pairs} }}\n"


def _channel(folder: Path, block: str, *, no_ads: bool = False) -> None:
    config = folder / "config.toml"
    text = config.read_text(encoding="utf-8")
    text = re.sub(r"^\[channels\.email\].*?\n\n", f"[channels.email]\n{block}\n",
                  text, flags=re.S | re.M)
    if no_ads:
        text = text.replace(', kind = "ad"', "")
    config.write_text(text, encoding="utf-8")


def use_solapi(folder: Path, emulator: SolapiEmulator, *, alimtalk: bool = False,
               extra: str = "") -> None:
    block = (f'type = "solapi"\napi_key = "{emulator.api_key}"\n'
             f'api_secret = "{emulator.api_secret}"\nendpoint = "{emulator.url}"\n'
             'to = "phone"\nsender = "02-123-4567"\nopt_out_number = "080-123-4567"\n'
             f"timeout = 5\nretries = 0\n{extra}")
    if alimtalk:
        block += f'pf_id = "{PF_ID}"\n' + _templates_line()
        emulator.templates.update({code: f"{name}: 안내" for name, code in
                                   template_ids().items()})
    _channel(folder, block, no_ads=alimtalk)


def use_nhn(folder: Path, emulator: NhnEmulator, *, extra: str = "") -> None:
    block = (f'type = "nhn"\napp_key = "{emulator.app_key}"\n'
             f'secret_key = "{emulator.secret_key}"\nsender_key = "{"a" * 40}"\n'
             f'endpoint = "{emulator.url}"\nto = "phone"\nsender = "02-123-4567"\n'
             f"timeout = 5\nretries = 0\n{extra}" + _templates_line())
    emulator.templates.update({code: f"{name}: 안내" for name, code in template_ids().items()})
    _channel(folder, block, no_ads=True)
