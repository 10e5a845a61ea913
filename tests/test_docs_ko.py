"""The Korean README and docs/ko stay in step with the English ones and with the CLI.

A Korean operator copies the quick start from README.ko.md, follows its links and types
the commands it shows; each of those is checked against README.md, the files on disk
and the click group itself, so a translation cannot drift from what the program does.
The terminal output README.ko.md shows is what those commands print on the sample (in
Korean, at the date the walk-through fixes), run again here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from sheetcrm.cli import cli
from tests.support.sample import copy_sample

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
README_KO = ROOT / "README.ko.md"
KO_PAGES = sorted((ROOT / "docs" / "ko").glob("*.md"))

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
# A global option taking a value: `sheetcrm --now 2026-11-23T10:00 sync`.
VALUE_OPTIONS = {"--config", "--now"}
# `sheetcrm` where a shell would run it: first on the line, after a prompt, `sudo`,
# `&&`, `;`, `|`, an environment assignment or a path; not the user or unit of that name.
INVOCATION = re.compile(r"(?:^|[$;&|(]\s*|\bsudo\s+|\b[A-Z_]+=\S*\s+|[/\\])\s*"
                        r"sheetcrm(?:-admin)?(?![\w.@-])((?:[ \t]+[^\s`|]+)+)", re.M)


def section(text: str, heading: str) -> str:
    """The body of the ``## heading`` section of a Markdown text."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else len(text)]


def fences(text: str) -> list[tuple[str, str]]:
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def code_text(text: str) -> str:
    """Only what a reader would type or see printed: code blocks and code spans."""
    blocks = [body for _, body in fences(text)]
    prose = FENCE.sub("", text)
    return "\n".join(blocks + CODE_SPAN.findall(prose))


def commands_shown(text: str) -> set[str]:
    """Every COMMAND in `sheetcrm [global options] COMMAND` written in the text's code."""
    found = set()
    for line in code_text(text).splitlines():
        for match in INVOCATION.finditer(line):
            words = match.group(1).split()
            while words and words[0].startswith("-"):
                option = words.pop(0)
                if option in VALUE_OPTIONS and words:
                    words.pop(0)
            if words and re.fullmatch(r"[a-z][a-z-]*", words[0]):
                found.add(words[0])
    return found


def test_the_korean_readme_has_the_english_quick_start_commands_exactly() -> None:
    english = fences(section(README.read_text(encoding="utf-8"), "Quick start"))
    korean = fences(section(README_KO.read_text(encoding="utf-8"), "빠른 시작"))
    assert [lang for lang, _ in english] == ["sh", "powershell", "sh", "powershell"]
    assert korean[:len(english)] == english


def test_the_korean_readme_and_the_english_one_link_each_other() -> None:
    english_top = README.read_text(encoding="utf-8").splitlines()[:5]
    korean_top = README_KO.read_text(encoding="utf-8").splitlines()[:5]
    assert any("(README.ko.md)" in line for line in english_top)
    assert any("(README.md)" in line for line in korean_top)


def test_the_key_pages_exist_in_korean_and_the_english_pages_link_them() -> None:
    names = {page.name for page in KO_PAGES}
    assert {"server.md", "kakao.md", "gsheets.md", "daemon.md", "airtable.md", "events.md",
            "mailbox.md"} <= names
    for name in names:
        english = ROOT / "docs" / name
        assert english.is_file(), f"docs/ko/{name} has no English page"
        links_back = f"(ko/{name})" in english.read_text(encoding="utf-8")
        assert links_back, f"docs/{name} does not link its Korean page"


@pytest.mark.parametrize("page", [README_KO, *KO_PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_in_the_korean_docs_points_at_a_file(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    targets = [t for t in LINK.findall(text)
               if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]
    assert targets, f"{page.name} links nothing"
    missing = [t for t in targets if not (page.parent / t.split("#")[0]).is_file()]
    assert not missing, f"{page.relative_to(ROOT)}: no such file for {missing}"


def test_every_command_the_korean_readme_shows_is_a_real_command() -> None:
    shown = commands_shown(README_KO.read_text(encoding="utf-8"))
    walk_through = {"check", "plan", "sync", "status", "report", "history", "test-send"}
    assert walk_through <= shown, f"the walk-through does not show {walk_through - shown}"
    assert shown <= set(cli.commands), f"not sheetcrm commands: {shown - set(cli.commands)}"


@pytest.mark.parametrize("page", KO_PAGES, ids=lambda p: p.name)
def test_every_command_a_korean_page_shows_is_a_real_command(page: Path) -> None:
    shown = commands_shown(page.read_text(encoding="utf-8"))
    assert shown <= set(cli.commands), f"not sheetcrm commands: {shown - set(cli.commands)}"


def test_the_command_finder_reads_global_options_and_ignores_prose() -> None:
    text = ("`sheetcrm --now 2026-11-23T10:00 sync`, `sudo sheetcrm-admin plan`,\n"
            "```sh\n.venv/bin/sheetcrm --json --config c.toml status\n```\n"
            "sheetcrm checks prose, and a `sheetcrm 리포트` tab is a name\n"
            "```sh\nSHEETCRM_LOCK_WAIT=60 sheetcrm report\njournalctl -u sheetcrm -o cat\n"
            "install -o sheetcrm -g sheetcrm key.json\n```\n")
    assert commands_shown(text) == {"sync", "plan", "status", "report"}


def terminal_blocks(text: str) -> list[tuple[list[str], str]]:
    """(the command's words, what the block shows it print) for each ``text`` block that
    opens with ``$ sheetcrm …``."""
    found = []
    for lang, body in fences(text):
        first, _, shown = body.partition("\n")
        if lang == "text" and first.startswith("$ sheetcrm "):
            found.append((first.split()[2:], shown))
    return found


def test_the_terminal_output_the_korean_readme_shows_is_what_the_sample_prints(
        run_cli: Any, tmp_path: Path) -> None:
    blocks = terminal_blocks(README_KO.read_text(encoding="utf-8"))
    now = ["--now", "2026-11-23T10:00"]
    assert [words for words, _shown in blocks] == [
        [*now, "sync"], [*now, "status"], [*now, "history", "minjun.choi@example.com"]]
    folder = copy_sample(tmp_path, "ko")
    for words, shown in blocks:  # in the README's order, on one copy of the sample
        result = run_cli(folder, *words, columns=80)
        assert result.code == 0, result.err
        printed = " ".join(result.out.split())
        # "..." stands for lines left out; each part shown is printed as shown (the
        # README wraps long lines at other places than an 80-column terminal).
        for part in shown.split("\n...\n"):
            words_shown = " ".join(part.replace("...\n", "").split())
            assert words_shown in printed, f"sheetcrm {' '.join(words)}: {part!r}"
