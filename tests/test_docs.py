"""Docs that cannot drift: every `intercept ...` command shown in a code block of README.md or
docs/*.md names a command that exists, and every --option it uses is in that command's --help;
the generated pages (docs/schema.md, docs/cli.md) are what the code makes now; and every table,
column, migration, file, module, class, function and option named in the docs' prose exists."""
from __future__ import annotations

import re
import shlex
import sys
from functools import lru_cache
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from intercept.cli import cli

ROOT = Path(__file__).resolve().parent.parent
# docs/reference.py makes the generated parts of the docs; the checks below use it too.
sys.path.insert(0, str(ROOT / "docs"))
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


# -- names in prose -----------------------------------------------------------------------------
# Every inline `code` span of the hand-written docs that names something of the code is checked
# against the code: a table's column, a migration, a file, a module's function or a class's
# method, an option. The code is read with `ast` (nothing imported: no model, no torch).

ALL_DOCS = [*DOCS, ROOT / "lexicons" / "README.md"]
SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
PATH_PREFIXES = ("intercept/", "scripts/", "tests/", "docs/", "lexicons/")
MIGRATION = re.compile(r"\b(\d{4}_[a-z_]+[a-z])\b")
DOTTED = re.compile(r"^([A-Za-z_]\w*)((?:\.[A-Za-z_]\w*)+)(\(.*\))?$")
# Options of other tools the docs cite in prose (ct2-transformers-converter's).
OTHER_TOOLS_OPTIONS = frozenset({"--quantization"})
FILE_SUFFIXES = {"json", "yaml", "yml", "txt", "tsv", "csv", "bin", "md", "wav", "mp3", "db", "pt", "toml", "html",
                 "js", "css", "png", "jsonl", "srt", "vtt", "sh", "lock", "onnx", "zip", "gz", "ogg", "flac", "m4a"}
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def prose_spans(path: Path) -> list[tuple[int, str]]:
    """Inline code spans outside fenced blocks and generated parts, with line numbers."""
    found, inside, generated = [], False, False
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if "[[[cog" in line or "[[[end]]]" in line:
            generated = "[[[cog" in line
            continue
        if generated:
            continue
        if FENCE.match(line):
            inside = not inside
            continue
        if not inside:
            found.extend((number, span.strip()) for span in SPAN.findall(line))
    return found


@lru_cache(maxsize=None)
def code_index() -> dict:
    """Modules (dotted name -> top-level names), classes (name -> attributes, bases) and every
    name or word the code of intercept/, scripts/ and tests/ uses."""
    import ast
    import io
    import tokenize

    modules, classes, vocabulary = {}, {}, set()
    for file in sorted([*(ROOT / "intercept").rglob("*.py"), *(ROOT / "scripts").glob("*.py"),
                        *(ROOT / "tests").glob("*.py")]):
        source = file.read_text(encoding="utf-8")
        tree = ast.parse(source)
        parts = file.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        top = set()
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                top.add(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                top.update(t.id for t in targets if isinstance(t, ast.Name))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                top.update((a.asname or a.name).split(".")[0] for a in node.names)
        modules[name] = top
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                attrs = set()
                for item in ast.walk(node):
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        attrs.add(item.name)
                    elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                        attrs.add(item.target.id)
                    elif isinstance(item, ast.Assign):
                        attrs.update(t.id for t in item.targets if isinstance(t, ast.Name))
                    elif isinstance(item, ast.Attribute) and isinstance(item.value, ast.Name) and item.value.id in ("self", "cls"):
                        attrs.add(item.attr)
                bases = [b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases]
                entry = classes.setdefault(node.name, (set(), []))
                entry[0].update(attrs)
                entry[1].extend(bases)
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.NAME:
                vocabulary.add(token.string)
            elif token.type == tokenize.STRING:
                vocabulary.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", token.string))
    # setup.cfg's comments explain packaging names (pkg_resources) the docs repeat.
    vocabulary.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", (ROOT / "setup.cfg").read_text(encoding="utf-8")))
    return {"modules": modules, "classes": classes, "vocabulary": vocabulary}


def class_has(name: str, attr: str, seen: frozenset = frozenset()) -> bool:
    classes = code_index()["classes"]
    if name not in classes or name in seen:
        return False
    attrs, bases = classes[name]
    return attr in attrs or any(class_has(base, attr, seen | {name}) for base in bases)


# Libraries whose names the docs cite, cheap to import; their names are checked by import.
LIBRARIES = {"sqlite_utils", "sqlite3", "click", "rapidfuzz", "hazm"}


def library_has(parts: list[str]) -> bool:
    import importlib

    thing = importlib.import_module(parts[0])
    for n, part in enumerate(parts[1:], 1):
        if hasattr(thing, part):
            thing = getattr(thing, part)
            continue
        try:
            thing = importlib.import_module(".".join(parts[: n + 1]))
        except ImportError:
            return False
    return True


def resolves(parts: list[str]) -> bool:
    """`a.b.c` names something in intercept: a module's name, a class's attribute."""
    index = code_index()
    modules = index["modules"]
    candidates = [m for m in modules if m == parts[0] or m.endswith("." + parts[0])]
    if parts[0] == "intercept":
        candidates = ["intercept"]
    for module in candidates:
        rest = list(parts[1:])
        while rest and f"{module}.{rest[0]}" in modules:
            module = f"{module}.{rest.pop(0)}"
        if not rest:
            return True
        if rest[0] in modules[module]:
            if len(rest) == 1 or all(class_has(rest[0], a) for a in rest[1:2]):
                return True
    if parts[0] in index["classes"]:
        return class_has(parts[0], parts[1])
    return False


@lru_cache(maxsize=None)
def every_option() -> frozenset[str]:
    from reference import _commands  # docs/reference.py

    names = {()} | set(_commands(cli))
    # The scripts' own options (benchmarks, evaluations) are named in the docs too.
    scripts = "\n".join(f.read_text(encoding="utf-8") for f in sorted((ROOT / "scripts").iterdir()) if f.is_file())
    helps = "\n".join(help_text(*n) for n in names)
    return frozenset(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", helps + "\n" + scripts))


def problems_in(path: Path) -> list[str]:
    import reference  # docs/reference.py

    schema = reference.fresh_schema()
    tables = {**schema["columns"]}
    migrations = set(schema["migrations"])
    index = code_index()
    schema_names = {n for n, _ in schema["triggers"] + schema["indexes"]}
    where = path.relative_to(ROOT)
    problems = []
    text = path.read_text(encoding="utf-8")
    for name in MIGRATION.findall(text):
        if name not in migrations and not (ROOT / name).exists():
            problems.append(f"{where}: no migration {name}")
    for number, span in prose_spans(path):
        at = f"{where}:{number}: `{span}`"
        for word in span.split():
            if word.startswith(PATH_PREFIXES) and re.match(r"^[\w./-]+$", word.rstrip(".,;:)")):
                file = word.rstrip(".,;:)")
                if not any(ch in file for ch in "*<>") and not (ROOT / file).exists():
                    problems.append(f"{at}: no file {file}")
        words = span.split()
        if re.match(r"^--[A-Za-z]", span):
            # `--option`, `--model base|PATH|NAME`, `--clean / --no-clean`
            for word in words:
                option = word.split("=", 1)[0]
                if re.match(r"^--[A-Za-z]", option) and option not in every_option() | OTHER_TOOLS_OPTIONS:
                    problems.append(f"{at}: no command has option {option}")
            continue
        if words[0] in cli.commands and any(w.startswith("--") for w in words[1:]):
            # `run --acoustic-loose`, `export --format corpus`: checked as `intercept ...` is.
            try:
                names, rest = resolve(words)
            except AssertionError as exc:
                problems.append(f"{at}: {exc}")
                continue
            shown = help_text(*names)
            for word in rest:
                option = word.split("=", 1)[0]
                if option.startswith("--") and not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", shown):
                    problems.append(f"{at}: `intercept {' '.join(names)}` has no option {option}")
            continue
        if re.match(r"^[\w-]+\.py$", span):
            if not any(ROOT.glob(f"*/**/{span}")):
                problems.append(f"{at}: no file {span} in the checkout")
            continue
        dotted = DOTTED.match(span)
        if dotted and dotted.group(2).rsplit(".", 1)[-1] in FILE_SUFFIXES:
            continue  # a file name (`model_card.json`), not a name in the code
        if dotted:
            parts = [dotted.group(1), *dotted.group(2)[1:].split(".")]
            if parts[0] in tables and len(parts) == 2 and parts[1] in reference.columns_of(parts[0]):
                continue
            if resolves(parts):
                continue
            if parts[0] in LIBRARIES:
                if not library_has(parts):
                    problems.append(f"{at}: no such name in {parts[0]}")
                continue
            if parts[0] in tables:
                problems.append(f"{at}: {parts[0]} has no column {parts[1]}")
            elif parts[0] == "intercept" or any(m.endswith("." + parts[0]) for m in index["modules"]) \
                    or parts[0] in index["classes"]:
                problems.append(f"{at}: no such name in the code")
            continue
        if IDENTIFIER.match(span) and ("_" in span.strip("_") or re.search(r"[a-z][A-Z]", span)):
            if span not in index["vocabulary"] and span not in tables and span not in schema_names:
                problems.append(f"{at}: named nowhere in intercept/ or scripts/")
    return problems


@pytest.mark.parametrize("path", ALL_DOCS, ids=[str(p.relative_to(ROOT)) for p in ALL_DOCS])
def test_names_in_the_docs_exist_in_the_code(path):
    problems = problems_in(path)
    assert not problems, "\n".join(problems)


def review_routes() -> list[re.Pattern]:
    """The review server's routes, as its plugins register them (read from the source)."""
    found = []
    for file in sorted((ROOT / "intercept" / "review").glob("*.py")):
        found.extend(re.findall(r'r"(\^/-/[^"]+\$)"', file.read_text(encoding="utf-8")))
    return [re.compile(pattern) for pattern in found]


def test_review_routes_in_the_docs_exist():
    routes = review_routes()
    assert any(r.match("/-/intercept/queue") for r in routes)  # the reading works
    problems = []
    for path in ALL_DOCS:
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), 1):
            # intercept's own routes (Datasette's, such as /-/metadata.json, are Datasette's business).
            for shown in re.findall(r"/-/(?:intercept/[\w./{}<>-]*|log\w+)", line):
                # Placeholders (`{line_id}`, `LINE`, `ID`) stand for a number; a sentence's full stop is not part of it.
                url = re.sub(r"\{\w+\}|<\w+>|\b[A-Z]+\b", "1", shown).rstrip(".")
                if not any(r.match(url) for r in routes):
                    problems.append(f"{path.relative_to(ROOT)}:{number}: no route {shown}")
    assert not problems, "\n".join(problems)


def test_datasette_pages_in_the_docs_exist():
    """`/store/NAME` pages the docs send reviewers to are tables or views of a fresh store, or
    canned queries of the review's metadata."""
    import yaml

    import reference

    metadata = yaml.safe_load((ROOT / "intercept" / "review" / "metadata.yaml").read_text(encoding="utf-8"))
    queries = {name for database in metadata["databases"].values() for name in (database.get("queries") or {})}
    assert "timeline" in queries  # the reading works
    known = queries | set(reference.fresh_schema()["columns"])
    problems = []
    for path in ALL_DOCS:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in re.findall(r"(?<![\w/.-])/store/(\w+)", line):
                if name not in known:
                    problems.append(f"{path.relative_to(ROOT)}:{number}: no table, view or canned query {name}")
    assert not problems, "\n".join(problems)


def test_architecture_names_every_module():
    """docs/architecture.md's table names every module and subpackage of intercept/, so that a
    new module (or one moved into a package) is drawn in the house when it lands."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    package = ROOT / "intercept"
    modules = [f"`{p.name}`" for p in package.glob("*.py") if p.name != "__init__.py"]
    modules += [f"`{p.name}/`" for p in package.iterdir() if p.is_dir() and (p / "__init__.py").exists()]
    assert len(modules) > 20  # the listing works
    missing = sorted(m for m in modules if m not in text)
    assert not missing, f"docs/architecture.md does not name {', '.join(missing)}"
