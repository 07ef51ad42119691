"""The parts of the docs that are generated from the code, with cog (as sqlite-utils does).

Regenerate every generated part (after changing the schema, a migration or the CLI):

    .venv/bin/python -m cogapp -r -I docs docs/*.md

tests/test_docs.py runs the same with --check, so a doc that no longer matches the code fails
the tests. The schema is read from a store created fresh in a temporary folder by this checkout's
`intercept.store.Store` (CREATE mode: every migration applied), never from a file in git.

Column meanings are written beside each table in docs/schema.md (the `notes` given to
`schema_table`); a note for a column that does not exist, a table or view that is never shown,
or a migration without a line of its own stops the generation with an error.
"""
from __future__ import annotations

import os
import sqlite3
import tempfile
from functools import lru_cache
from typing import Optional

import click

# sqlite-utils' FTS5 keeps its index in these tables beside `lines_fts`; they are the
# library's, not the project's, and are named only as a group.
FTS_SHADOW_SUFFIXES = ("_data", "_idx", "_docsize", "_config")
# Table of sqlite-utils' migration runner, listed among the migrations rather than the tables.
MIGRATIONS_TABLE = "_sqlite_migrations"

_shown: set[str] = set()


@lru_cache(maxsize=None)
def fresh_schema() -> dict:
    """Tables (with their columns and declared types), views, triggers, indexes and migrations
    of a store made now by intercept.store in an empty temporary folder."""
    from intercept.store import CREATE, MIGRATIONS, SCHEMA_VERSION, Store

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "fresh.db")
        with Store(path, CREATE) as store:
            conn: sqlite3.Connection = store.db.conn
            master = conn.execute(
                "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY rowid"
            ).fetchall()
            columns = {}
            for kind, name, _ in master:
                if kind in ("table", "view"):
                    columns[name] = [(row[1], row[2] or "") for row in conn.execute(f"PRAGMA table_xinfo([{name}])")]
            applied = [row[0] for row in conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE} ORDER BY id")]
            user_version = conn.execute("PRAGMA user_version").fetchone()[0]
    fts = {name for kind, name, _ in master if kind == "table" and name.endswith("_fts")}
    shadow = {f"{base}{suffix}" for base in fts for suffix in FTS_SHADOW_SUFFIXES}
    return {
        "tables": [n for k, n, _ in master if k == "table" and n not in shadow and n != MIGRATIONS_TABLE],
        "views": [n for k, n, _ in master if k == "view"],
        "fts": sorted(fts),
        "shadow": sorted(shadow),
        "triggers": [(n, t) for k, n, t in master if k == "trigger"],
        "indexes": [(n, t) for k, n, t in master if k == "index"],
        "columns": columns,
        # The registered migrations, in order, and those a fresh store records as applied:
        # the two must agree (a migration registered but not applied would be a bug).
        "migrations": [m.name for m in MIGRATIONS._migrations],
        "applied": applied,
        "schema_version": SCHEMA_VERSION,
        "user_version": user_version,
    }


def columns_of(name: str) -> list[str]:
    return [column for column, _ in fresh_schema()["columns"][name]]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def schema_table(name: str, notes: Optional[dict[str, str]] = None) -> str:
    """A markdown table of every column of table or view `name` in a fresh store, with its
    declared type and the meaning given in `notes` (column -> text)."""
    schema = fresh_schema()
    if name not in schema["columns"] or name in schema["shadow"]:
        raise ValueError(f"{name!r} is not a table or view of a fresh store")
    notes = notes or {}
    unknown = sorted(set(notes) - set(columns_of(name)))
    if unknown:
        raise ValueError(f"{name}: notes for columns that do not exist: {', '.join(unknown)}")
    _shown.add(name)
    out = ["| column | type | meaning |", "|---|---|---|"]
    for column, declared in schema["columns"][name]:
        out.append(f"| `{column}` | {declared or '-'} | {_cell(notes.get(column, ''))} |")
    return "\n".join(out)


def every_table_shown() -> str:
    """Raises unless every table and view of a fresh store was shown with `schema_table`
    earlier in this cog run; otherwise the list of sqlite-utils' FTS shadow tables."""
    schema = fresh_schema()
    missing = [n for n in schema["tables"] + schema["views"] if n not in _shown]
    if missing:
        raise ValueError(f"tables or views not shown in docs/schema.md: {', '.join(missing)}")
    return ", ".join(f"`{n}`" for n in schema["shadow"])


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def migrations_table(notes: Optional[dict[str, str]] = None) -> str:
    """The migrations a fresh store has applied, in order, each described by `notes` or else by
    the first sentence of its function's docstring in intercept.store."""
    from intercept.store import MIGRATIONS

    schema = fresh_schema()
    if schema["migrations"] != schema["applied"]:
        raise ValueError(f"registered migrations {schema['migrations']} differ from applied {schema['applied']}")
    if schema["user_version"] != len(schema["migrations"]) or schema["schema_version"] != len(schema["migrations"]):
        raise ValueError("PRAGMA user_version / SCHEMA_VERSION do not count the migrations")
    notes = notes or {}
    unknown = sorted(set(notes) - set(schema["migrations"]))
    if unknown:
        raise ValueError(f"notes for migrations that do not exist: {', '.join(unknown)}")
    docstrings = {m.name: m.fn.__doc__ or "" for m in MIGRATIONS._migrations}
    out = ["| user_version | migration | what it does |", "|---|---|---|"]
    for number, name in enumerate(schema["migrations"], 1):
        text = notes.get(name) or _first_sentence(docstrings[name])
        if not text:
            raise ValueError(f"migration {name} has no docstring and no note in docs/schema.md")
        out.append(f"| {number} | `{name}` | {_cell(text)} |")
    return "\n".join(out)


def triggers_and_indexes() -> str:
    schema = fresh_schema()
    out = []
    for label, items in (("Triggers", schema["triggers"]), ("Indexes", schema["indexes"])):
        by_table: dict[str, list[str]] = {}
        for name, table in items:
            by_table.setdefault(table, []).append(f"`{name}`")
        out.append(f"{label}, by table:\n")
        out.extend(f"- `{table}`: {', '.join(names)}" for table, names in by_table.items())
        out.append("")
    return "\n".join(out).rstrip()


# -- CLI --------------------------------------------------------------------------------------

# Help is rendered at a fixed width so that the reference does not depend on the terminal.
HELP_WIDTH = 100


def _commands(group: click.Group, names: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        found.append(names + (name,))
        if isinstance(command, click.Group):
            found.extend(_commands(command, names + (name,)))
    return found


def help_of(*names: str) -> str:
    from click.testing import CliRunner

    from intercept.cli import cli

    result = CliRunner().invoke(cli, [*names, "--help"], prog_name="intercept", terminal_width=HELP_WIDTH)
    if result.exit_code != 0:
        raise RuntimeError(f"intercept {' '.join(names)} --help failed: {result.output}")
    return result.output.rstrip() + "\n"


def cli_reference() -> str:
    """`intercept --help` and the --help of every command and subcommand, in order."""
    from intercept.cli import cli

    out = ["```", help_of().rstrip(), "```"]
    for names in _commands(cli):
        title = " ".join(("intercept",) + names)
        out += ["", f"### {title}", "", "```", help_of(*names).rstrip(), "```"]
    return "\n".join(out)
