"""The outbox channel: one parseable .eml per idempotency key, written atomically."""

from __future__ import annotations

import email
import email.policy
import os
import shutil
from pathlib import Path

import pytest

from sheetcrm.channels import make_channel, parse_channel_settings
from sheetcrm.channels.base import Message
from sheetcrm.channels.outbox import OutboxChannel, outbox_file_name
from sheetcrm.errors import ChannelError

MESSAGE = Message(
    idempotency_key="kim@example.com:onboarding:2026-03-01:1",
    recipient="kim@example.com",
    subject="가입을 환영합니다",
    text="첫 수업은 내일입니다.",
    meta={"key": "kim@example.com", "date": "Mon, 02 Mar 2026 09:00:00 +0900"},
)


def outbox(tmp_path: Path, **raw: object) -> OutboxChannel:
    settings = parse_channel_settings("email", {"from": "My Class <hello@example.com>", **raw})
    channel = make_channel("email", settings, base_dir=tmp_path)
    assert isinstance(channel, OutboxChannel)
    return channel


def test_type_defaults_to_outbox_in_a_folder_next_to_the_config(tmp_path: Path) -> None:
    channel = outbox(tmp_path)
    assert channel.redelivery_safe is True
    delivery = channel.send(MESSAGE)
    path = Path(delivery.detail)
    assert path.parent == tmp_path / "outbox"
    assert path.suffix == ".eml"
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "가입을 환영합니다"
    assert parsed["To"] == "kim@example.com"
    assert parsed["Message-ID"] == delivery.message_id
    assert parsed.get_content() == "첫 수업은 내일입니다.\n"


def test_same_key_overwrites_the_same_single_file(tmp_path: Path) -> None:
    channel = outbox(tmp_path, path="mail/out")
    first = channel.send(MESSAGE)
    second = channel.send(Message(**{**MESSAGE.__dict__, "subject": "다시 보냄"}))
    assert first == second
    files = sorted((tmp_path / "mail" / "out").iterdir())
    assert files == [Path(first.detail)]  # no second file, no leftover temporary file
    assert "=?utf-8?" in files[0].read_text()
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert parsed["Subject"] == "다시 보냄"


def test_different_keys_get_different_files(tmp_path: Path) -> None:
    channel = outbox(tmp_path)
    one = channel.send(MESSAGE)
    two = channel.send(Message(**{**MESSAGE.__dict__, "idempotency_key": "other"}))
    assert one.detail != two.detail
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 2


def test_file_names_are_safe_and_unique() -> None:
    name = outbox_file_name("../../etc/passwd\r\n")
    assert "/" not in name and "\n" not in name and not name.startswith(".")
    assert outbox_file_name("김철수:flow:1") != outbox_file_name("이영희:flow:1")
    assert outbox_file_name("a:b") != outbox_file_name("a/b")


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    channel = outbox(tmp_path)

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ChannelError, match="No space left") as caught:
        channel.send(MESSAGE)
    assert caught.value.retryable is True
    assert list((tmp_path / "outbox").iterdir()) == []


def test_a_bad_recipient_is_not_written(tmp_path: Path) -> None:
    channel = outbox(tmp_path)
    with pytest.raises(ChannelError, match="recipient"):
        channel.send(Message(**{**MESSAGE.__dict__, "recipient": "kim at example"}))
    assert not (tmp_path / "outbox").exists()


def test_an_outbox_folder_removed_between_two_sends_is_made_again(tmp_path: Path) -> None:
    channel = outbox(tmp_path, path="mail/out")
    first = Path(channel.send(MESSAGE).detail)
    shutil.rmtree(tmp_path / "mail")
    second = Path(channel.send(MESSAGE).detail)
    assert second == first and second.is_file()
