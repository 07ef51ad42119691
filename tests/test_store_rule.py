"""The house rules of the store (issue 26), checked on the source:

- only intercept/store/ knows SQL: no SQL statement or clause in a string anywhere else in
  intercept/ (canned queries live in review/metadata.yaml, which is not Python), and no
  sqlite3 or sqlite_utils import outside the store (a type-checking import aside);
- every `Store(` call names its mode (READ is the default, so a writer that forgets it fails
  at its first write; naming it makes what each command may do to the file visible);
- intercept's modules import each other without a cycle (issue 26), the review's and the
  store's included.

Each check scans the syntax tree, so comments and docstrings (prose about SQL) do not count.

What counts as an import, for the cycles: every `import` and `from ... import` in a module,
at module level or inside a function (a lazy import) or under TYPE_CHECKING alike. A lazy
import made only to dodge a cycle at load time is still a cycle in the design (two modules that
each need the other), so it is refused too: the shared piece moves down to the lower module
(store/base.py, engines/base.py) or the upper one goes up a level (retranslate.py over
translate.py). A lazy import that only defers a heavy load (torch, ctranslate2, a model) is
fine as long as it points down. A submodule's import of its own package (`from . import x` in
a package's module) is an edge to that package's __init__, which usually imports the
submodule: that is a cycle, so a package's modules import their siblings, not the package.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "intercept"
STORE = PACKAGE / "store"

# What a piece of SQL looks like: a statement, or a clause with a bound parameter.
SQL = re.compile(
    r"\bselect\s+(distinct\s+)?[\w.*(]+[\s\S]*\bfrom\s+[\w(]"
    r"|\binsert\s+(or\s+\w+\s+)?into\s+\w"
    r"|\bupdate\s+\w+\s+set\s"
    r"|\bdelete\s+from\s+\w"
    r"|\b(create|drop|alter)\s+(temp\w*\s+)?(table|index|view|trigger|virtual\s+table)\b"
    r"|\bpragma\s+\w+"
    r"|^\s*(begin(\s+immediate|\s+exclusive)?|commit|rollback|savepoint\s+\w+)\s*;?\s*$"
    r"|\b\w+\s*(=|==|!=|<>|<=|>=|<|>|\bis\b|\blike\b|\bglob\b|\bmatch\b)\s*(\?|:[a-z_]\w*\b)"
    r"|\b\w+\s+is\s+(not\s+)?null\b"
    r"|\b(order|group)\s+by\s+\w",
    re.IGNORECASE | re.MULTILINE,
)
SQLITE_MODULES = ("sqlite3", "sqlite_utils", "apsw")


def _sources(folder: Path, skip: Path | None = None) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if skip is None or skip not in p.parents)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (prose)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                found.add(id(first.value))
    return found


def _strings(tree: ast.AST):
    """(line, text) of every string in the code; an f-string as its literal parts joined with
    a placeholder, so that a statement built around {values} is still seen whole."""
    prose = _docstrings(tree)
    inside_fstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            parts = []
            for value in node.values:
                inside_fstrings.add(id(value))
                parts.append(value.value if isinstance(value, ast.Constant) and isinstance(value.value, str) else "x")
            yield node.lineno, "".join(parts)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
                and id(node) not in inside_fstrings):
            yield node.lineno, node.value


def sql_outside_store(folder: Path = PACKAGE, store: Path = STORE) -> list[str]:
    """'path:line: text' of every SQL-looking string in `folder` outside `store`."""
    found = []
    for path in _sources(folder, skip=store):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for line, text in _strings(tree):
            if SQL.search(text):
                found.append(f"{path.relative_to(folder.parent)}:{line}: {text.strip()[:80]!r}")
    return found


def _type_checking_only(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            ids.update(id(n) for child in node.body for n in ast.walk(child))
    return ids


def sqlite_imports_outside_store(folder: Path = PACKAGE, store: Path = STORE) -> list[str]:
    found = []
    for path in _sources(folder, skip=store):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        typing_only = _type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(name.split(".")[0] in SQLITE_MODULES for name in names):
                found.append(f"{path.relative_to(folder.parent)}:{node.lineno}: imports {', '.join(names)}")
    return found


def store_calls_without_mode(paths) -> list[str]:
    found = []
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            if name == "Store" and len(node.args) < 2 and not any(k.arg == "mode" for k in node.keywords):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
        # Scripts run in a subprocess are strings; look for the call in them too.
        for line, text in _strings(tree):
            for match in re.finditer(r"\bStore\(([^(),]*(\([^()]*\))?[^(),]*)\)", text):
                found.append(f"{path.relative_to(ROOT)}:{line}: {match.group(0)}")
    return found


def import_graph(folder: Path, package: str) -> dict[str, set[str]]:
    """module -> the modules of `package` it imports (anywhere in it, lazily too). `from . import
    x` is an import of the submodule x, not of the package around it."""
    modules = {}
    for path in _sources(folder):
        parts = [package, *path.relative_to(folder).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path

    def known(name: str) -> str:
        while name and name not in modules:
            name = name.rsplit(".", 1)[0] if "." in name else ""
        return name

    graph = {}
    for name, path in modules.items():
        package_of = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(package_of.split(".")[: len(package_of.split(".")) - node.level + 1]
                                    + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            edges.update(t for t in map(known, targets) if t and t != name)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.add(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(group)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# ---------------------------------------------------------------- the rules on this checkout


def test_no_sql_outside_the_store():
    found = sql_outside_store()
    assert not found, "SQL outside intercept/store/ (move it into a store function):\n" + "\n".join(found)


def test_no_sqlite_imports_outside_the_store():
    found = sqlite_imports_outside_store()
    assert not found, "only intercept/store/ opens SQLite:\n" + "\n".join(found)


def test_every_store_call_names_its_mode():
    paths = [p for p in _sources(PACKAGE) + _sources(ROOT / "scripts") + _sources(ROOT / "tests")
             if p != Path(__file__).resolve()]  # this file's own examples
    found = store_calls_without_mode(paths)
    assert not found, "Store( without a mode (READ, WRITE or CREATE):\n" + "\n".join(found)


def cycle_report(graph: dict[str, set[str]]) -> list[str]:
    """One line per cycle: each module of it with the modules of the cycle it imports."""
    return ["; ".join(f"{name} -> {', '.join(sorted(graph[name] & group))}" for name in sorted(group))
            for group in cycles(graph)]


def test_the_package_has_no_import_cycle():
    found = cycle_report(import_graph(PACKAGE, "intercept"))
    assert not found, ("modules of intercept/ that import each other, lazily or not (move the shared "
                       "piece to the lower module):\n" + "\n".join(found))


# ---------------------------------------------------------------- the checks themselves


@pytest.mark.parametrize("text", [
    "select 1 from lines where id = ?",
    "SELECT line_id FROM flags WHERE concept = :concept",
    "INSERT INTO verdicts (line_id) VALUES (?)",
    "update voices set name = ? where id = ?",
    "DELETE FROM claims",
    "PRAGMA table_info(lines)",
    "CREATE INDEX IF NOT EXISTS x ON lines(id)",
    "superseded_by_revision = ?",
    "recording_id NOT IN (1, 2) and verdict is null",
    "BEGIN IMMEDIATE",
    "order by start_s desc",
])
def test_sql_is_recognised(text):
    assert SQL.search(text)


@pytest.mark.parametrize("text", [
    "no intercept store is open",
    "POST a verdict here; see docs/review.md",
    "give line_id and a note of at most 4000 characters",
    "only logged-in reviewers may write: log in at /-/login",
    "?verdict__isnull=1&score__gte=0.5",
    "the store is read-only here: nothing can be recorded",
    "select the lines to export",
])
def test_prose_is_not_sql(text):
    assert not SQL.search(text)


def test_the_checks_find_what_they_look_for(tmp_path):
    package = tmp_path / "intercept"
    (package / "store").mkdir(parents=True)
    (package / "store" / "__init__.py").write_text('SQL = "select * from lines where id = ?"\nimport sqlite3\n')
    (package / "review.py").write_text(
        '"""Reads: select what you need from lines."""\n'
        "import sqlite_utils\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import sqlite3\n"
        "def f(db, table):\n"
        '    db.execute(f"select id from {table} where line_id = ?", [1])\n'
        "    Store(path)\n    Store(path, READ)\n    Store(path, mode=WRITE)\n"
        '    script = "with Store(db) as store: pass"\n')
    assert [f.split(":")[1] for f in sql_outside_store(package, package / "store")] == ["7"]
    assert [f.split(":")[1] for f in sqlite_imports_outside_store(package, package / "store")] == ["2"]
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        calls = store_calls_without_mode([package / "review.py"])
    finally:
        ROOT = saved
    assert [c.split(":", 2)[2].strip() for c in calls] == ["Store(path)", "Store(db)"]
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def f():\n    from .a import x\n")
    (package / "c.py").write_text("from . import b\n")
    assert cycles(import_graph(package, "intercept")) == [{"intercept.a", "intercept.b"}]
    # A package's module importing the package around it, while the package imports the
    # module (the store's __init__ and team.py before this check covered the whole package).
    (package / "d").mkdir()
    (package / "d" / "__init__.py").write_text("from . import e\n")
    (package / "d" / "e.py").write_text("def f():\n    from intercept.d import g\n")
    (package / "d" / "f.py").write_text("from .e import f\n")
    graph = import_graph(package, "intercept")
    assert cycles(graph) == [{"intercept.a", "intercept.b"}, {"intercept.d", "intercept.d.e"}]
    assert cycle_report(graph)[1] == "intercept.d -> intercept.d.e; intercept.d.e -> intercept.d"
