"""Docs that cannot drift: every `intercept ...` command shown in a code block of README.md or
docs/*.md names a command that exists, and every --option it uses is in that command's --help."""
from __future__ import annotations

import re
import shlex
from functools import lru_cache
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from intercept.cli import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE = re.compile(r"(?<!`)`((?:\S*/)?intercept [^`]+)`(?!`)")
COMMAND_ENDS = {"|", "||", "&&", ";", ">", ">>", "2>", "&"}


def code_lines(path: Path) -> list[tuple[int, str]]:
    """Lines inside fenced code blocks (continuations joined) and inline `intercept ...`
    spans, with their line numbers."""
    found, inside, pending, start, generated = [], False, "", 0, False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        # Generated output (cog) is checked whole by test_generated_pages_match_the_code.
        if "[[[cog" in line or "[[[end]]]" in line:
            generated = "[[[cog" in line
            continue
        if generated:
            continue
        if FENCE.match(line):
            inside, pending = not inside, ""
            continue
        if not inside:
            # Inline code in prose: `intercept run --clean`.
            found.extend((number, span) for span in INLINE.findall(line))
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        found.append((start, pending + line))
        pending = ""
    return found


def commands_in(line: str) -> list[list[str]]:
    """Each `intercept ...` invocation on a shell line, as its words after `intercept`."""
    text = line.split(" #", 1)[0].strip()
    if text.startswith("$ "):
        text = text[2:]
    try:
        words = shlex.split(text)
    except ValueError:
        return []
    invocations = []
    for n, word in enumerate(words):
        if word == "intercept" or word.endswith("/intercept"):
            rest = []
            for following in words[n + 1:]:
                if following in COMMAND_ENDS:
                    break
                rest.append(following)
            invocations.append(rest)
    return invocations


def shown_commands() -> list[tuple[str, list[str]]]:
    found = []
    for path in DOCS:
        for number, line in code_lines(path):
            for words in commands_in(line):
                found.append((f"{path.relative_to(ROOT)}:{number}", words))
    return found


@lru_cache(maxsize=None)
def help_text(*names: str) -> str:
    result = CliRunner().invoke(cli, [*names, "--help"])
    assert result.exit_code == 0, (names, result.output)
    return result.output


def resolve(words: list[str]) -> tuple[list[str], list[str]]:
    """(the command path, the words after it) for words following `intercept`."""
    command, names = cli, []
    rest = list(words)
    # An upper-case word stands for any command (`intercept COMMAND --help`).
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-") and not rest[0].isupper():
        sub = command.get_command(click.Context(command), rest[0])
        if sub is None:
            raise AssertionError(f"no command `intercept {' '.join(names + [rest[0]])}`")
        command, names = sub, names + [rest.pop(0)]
    return names, rest


SHOWN = shown_commands()


def test_the_docs_show_commands():
    # The extraction itself works: README's typical day is there.
    assert any(words[:1] == ["run"] for _, words in SHOWN)
    assert any(words[:1] == ["verify"] for _, words in SHOWN)


@pytest.mark.parametrize("where,words", SHOWN, ids=[f"{w}:{' '.join(x)[:40]}" for w, x in SHOWN])
def test_each_shown_command_and_option_exists(where, words):
    names, rest = resolve(words)
    shown = help_text(*names)
    for word in rest:
        if word.startswith("--"):
            option = word.split("=", 1)[0]
            assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", shown), (
                f"{where}: `intercept {' '.join(names)}` has no option {option}")
        elif word.startswith("-") and len(word) == 2:
            assert re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", shown), (
                f"{where}: `intercept {' '.join(names)}` has no option {word}")


# -- generated pages ----------------------------------------------------------------------------

GENERATED = sorted(path for path in (ROOT / "docs").glob("*.md") if "[[[cog" in path.read_text(encoding="utf-8"))


def test_generated_pages_match_the_code(monkeypatch, capsys):
    """docs/schema.md and docs/cli.md are what docs/reference.py makes from this checkout (a fresh
    store, every --help); regenerate with `.venv/bin/python -m cogapp -r -I docs docs/*.md`."""
    from cogapp import Cog

    assert {p.name for p in GENERATED} >= {"schema.md", "cli.md"}
    monkeypatch.chdir(ROOT)
    status = Cog().main(["cog", "--check", "--diff", "-I", "docs", *(str(p.relative_to(ROOT)) for p in GENERATED)])
    out = capsys.readouterr()
    assert status == 0, "stale generated docs; run `.venv/bin/python -m cogapp -r -I docs docs/*.md`\n" + out.out + out.err
