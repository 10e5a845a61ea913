"""Delivery reports in tests: the endpoint taking a text channel's reports, and what the
ledger then holds.

``hear_reports(folder, source, secret)`` adds ``[server]`` and ``[events.kakao]`` (Solapi's
or NHN Cloud's reports of the config's one channel of that type) to a config; the
emulators post the reports themselves (``SolapiEmulator.post_report``,
``NhnEmulator.post_hook``) to the real endpoint that ``support.events.Listening`` serves.
"""

from __future__ import annotations

from pathlib import Path

from sheetcrm.config import Config, load_config
from sheetcrm.ledger import Ledger

SOLAPI_SECRET = "solapi-webhook-secret-0123456789"
NHN_SIGNATURE = "signature typed in the NHN console"
MAX_BODY = 8192

SERVER = f"""
[server]
public_url = "https://crm.example.com"
secret = "a secret of at least sixteen characters"
rate_limit = "100000/1m"
max_body = {MAX_BODY}
"""


def hear_reports(folder: Path, source: str, secret: str, extra: str = "") -> None:
    """The endpoint, and ``[events.kakao]`` taking ``source``'s delivery reports."""
    with open(folder / "config.toml", "a", encoding="utf-8") as f:
        f.write(f'{SERVER}\n[events.kakao]\nsource = "{source}"\nsecret = "{secret}"\n{extra}')


def config_of(folder: Path) -> Config:
    return load_config(folder / "config.toml", {})


def deliveries(config: Config) -> dict[str, int]:
    """Delivery state -> sends in it, as the ledger holds them."""
    ledger = Ledger.open_readonly(config.state_path)
    try:
        return {str(k): n for k, n in ledger.count_deliveries().items()}
    finally:
        ledger.close()


def refused(config: Config) -> dict[tuple[str, str], tuple[int, int]]:
    """(event name, reason) -> (status answered, count), as ``status`` shows them."""
    ledger = Ledger.open_readonly(config.state_path)
    try:
        return {(r["name"], r["reason"]): (r["status"], r["count"]) for r in ledger.refusals()}
    finally:
        ledger.close()
