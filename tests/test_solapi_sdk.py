"""The official ``solapi`` Python SDK (the test extra only) against the Solapi emulator:
the emulator speaks what Solapi's own client speaks, so it is a fair stand-in for the
real service in every other test.

The SDK signs with ``ApiKey=``/``Date=`` (a local time with its offset) and a uuid1
salt, and sends through ``POST /messages/v4/send-many/detail``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest
from solapi import SolapiMessageService
from solapi.model import KakaoOption, RequestMessage

from tests.support.emulators.solapi import SolapiEmulator

TEMPLATES = {"KA01TP0000000001": "#{name}님, 결제가 아직 완료되지 않았어요."}


@pytest.fixture
def solapi() -> Iterator[SolapiEmulator]:
    with SolapiEmulator(templates=TEMPLATES) as emulator:
        yield emulator


def service(emulator: SolapiEmulator, secret: str | None = None) -> SolapiMessageService:
    sdk = SolapiMessageService(api_key=emulator.api_key, api_secret=secret or emulator.api_secret)
    sdk.base_url = emulator.url  # the SDK's one place for the address
    return sdk


def test_the_official_sdk_sends_an_sms_and_an_alimtalk_through_the_emulator(
        solapi: SolapiEmulator) -> None:
    sdk = service(solapi)
    answer = sdk.send(RequestMessage(from_="02-123-4567", to="010-1234-5678", text="결제 안내"))
    assert answer.group_info.count.registered_success == 1
    assert answer.message_list is not None and answer.message_list[0].status_code == "2000"
    option = KakaoOption(pf_id="KA01PF0000000001", template_id="KA01TP0000000001",
                         variables={"#{name}": "김수현"})
    sdk.send(RequestMessage(from_="021234567", to="01012345678", kakao_options=option))
    assert [(m.type, m.text) for m in solapi.received] == [
        ("SMS", "결제 안내"), ("ATA", "김수현님, 결제가 아직 완료되지 않았어요.")]
    header = solapi.requests[0].headers["authorization"]
    assert "ApiKey=" in header and "Date=" in header  # the SDK's spelling, accepted
    assert solapi.requests[0].path == "/messages/v4/send-many/detail"


def test_the_official_sdk_is_refused_with_a_wrong_secret(solapi: SolapiEmulator) -> None:
    with pytest.raises(Exception) as refused:
        service(solapi, secret="not-the-secret").send(
            RequestMessage(from_="021234567", to="01012345678", text="결제 안내"))
    assert refused.value.args[0] == "SignatureDoesNotMatch"
    assert solapi.received == []
    assert solapi.requests[0].status == 403


def test_the_product_never_imports_the_sdk() -> None:
    """The SDK is a test client only (the ``test`` extra): sheetcrm speaks to Solapi itself."""
    import sheetcrm

    imported = set()
    for source in Path(sheetcrm.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
    assert "requests" in imported and "solapi" not in imported
