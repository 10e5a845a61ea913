"""Alerts in tests: ``[alerts]`` aimed at loopback receivers, and what they received.

The real apprise sends every alert: its ``json://`` service POSTs a JSON body
(``title``, ``message``) to any host, so a ``WebhookServer`` on 127.0.0.1 is the
alert service. Its URL carries a token from the environment (``ALERT_TOKEN``), as an
operator's Slack or Discord URL carries theirs, so tests can look for it wherever
it must not appear.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

from tests.support.daemon import save
from tests.support.servers import WebhookServer

TOKEN = "T0k3nAlertSecret9f2c"  # the secret in the alert URL's path
PASSWORD = "pw-Secret-4417"  # a password in an alert URL that cannot be reached
ENV = {"ALERT_TOKEN": TOKEN, "ALERT_PASSWORD": PASSWORD}


def receiver() -> WebhookServer:
    """An alert service on 127.0.0.1 answering 200 (until told otherwise)."""
    return WebhookServer(path=f"/hook/{TOKEN}")


def url_of(server: WebhookServer) -> str:
    """The apprise URL of a receiver, its token left to the environment."""
    return f"json://127.0.0.1:{server.port}/hook/${{ALERT_TOKEN}}"


def unreachable_url() -> str:
    """An apprise URL to a closed port on 127.0.0.1, with a password and a token."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"json://ops:${{ALERT_PASSWORD}}@127.0.0.1:{port}/hook/${{ALERT_TOKEN}}"


def add_alerts(folder: Path, *urls: str, timeout: float = 5) -> None:
    """Give the config in ``folder`` an ``[alerts]`` table with ``urls``."""
    config = folder / "config.toml"
    text = re.sub(r"(?ms)^\[alerts\].*?(?=^\[|\Z)", "", config.read_text(encoding="utf-8"))
    listed = ", ".join(f'"{u}"' for u in urls)
    save(config, text.rstrip("\n") + f"\n\n[alerts]\nurls = [{listed}]\ntimeout = {timeout}\n")


def set_send_limit(folder: Path, limit: int) -> None:
    """Change ``[sending] max_sends_per_run`` (21 sends fall due on the sample's day 0)."""
    config = folder / "config.toml"
    save(config, re.sub(r"(?m)^max_sends_per_run\s*=\s*\d+", f"max_sends_per_run = {limit}",
                        config.read_text(encoding="utf-8")))


def titles(server: WebhookServer) -> list[str]:
    """The titles of the alerts the receiver took (answered 200), in order."""
    return [r.json()["title"] for r in server.requests_where("POST", 200)]
