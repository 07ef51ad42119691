"""What every part of the review shares (plugin.py, pages.py, team.py, voices.py,
corrections.py, doors.py): the plugin's configuration, its permissions, and which of the
Datasette's databases is an intercept store. It imports no other module of the review, so the
others import it and not each other.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from intercept.store import is_store_connection

PLUGIN_NAME = "intercept"
WRITE_VERDICT = "intercept-write-verdict"  # the permission a reviewer needs to record verdicts
DECIDE = "intercept-decide"  # a lead's: decide a flag reviewers disagree on
MAX_NOTE_CHARS = 4000
STATIC_DIR = Path(__file__).parent / "static"

CONFIG_ATTRIBUTE = "_intercept_review_config"
STORES_ATTRIBUTE = "_intercept_stores"  # database name -> whether it is an intercept store


def config(datasette) -> dict:
    """The plugin's configuration (intercept.review.metadata_for)."""
    # Kept on the Datasette instance: render_cell asks for every cell, and plugin_config
    # re-resolves the whole metadata each time (most of a large page's rendering time).
    # The configuration is fixed when the Datasette is made.
    found = getattr(datasette, CONFIG_ATTRIBUTE, None)
    if found is None:
        found = datasette.plugin_config(PLUGIN_NAME) or {}
        setattr(datasette, CONFIG_ATTRIBUTE, found)
    return found


async def store_database(datasette):
    """The Datasette database holding the intercept store: the one the plugin configuration
    names, else the first that is an intercept store; None when there is none."""
    name = config(datasette).get("database")
    if name:
        return datasette.databases.get(name)
    for database in list(datasette.databases.values()):
        if await is_store(datasette, database.name):
            return database
    return None


# The plugins act on intercept stores only: any other database in the same Datasette (the
# plugins are installed for every Datasette on the machine) is served as plain Datasette.
def known_store(datasette, database: Optional[str]) -> Optional[bool]:
    """Whether `database` is an intercept store, when known without a query; None when not."""
    if database is None:
        return False
    name = config(datasette).get("database")
    if name is not None and database != name:
        return False
    return getattr(datasette, STORES_ATTRIBUTE, {}).get(database)


async def is_store(datasette, database: Optional[str]) -> bool:
    """Whether Datasette's database `database` is an intercept store: asked of the database
    once (intercept.store.is_store_connection), then remembered."""
    known = known_store(datasette, database)
    if known is not None:
        return known
    db = datasette.databases.get(database)
    found = False
    if db is not None and database != "_internal" and not db.is_memory:
        try:
            found = bool(await db.execute_fn(is_store_connection))
        except Exception:  # unreadable as SQLite: certainly not a store
            found = False
    if not hasattr(datasette, STORES_ATTRIBUTE):
        setattr(datasette, STORES_ATTRIBUTE, {})
    getattr(datasette, STORES_ATTRIBUTE)[database] = found
    return found


def for_stores(datasette, database: Optional[str], result, otherwise=None):
    """For a hook: result() when `database` is an intercept store, else `otherwise`; an
    awaitable (Datasette awaits hooks' awaitables) while that is not known yet."""
    known = known_store(datasette, database)
    if known is None:
        async def checked():
            return result() if await is_store(datasette, database) else otherwise

        return checked
    return result() if known else otherwise


def on_store_pages(datasette, database: Optional[str], result):
    """For the hooks that add CSS and JavaScript: result() on an intercept store's pages and
    on pages about no one database (the index, /-/ pages), which keep the review's look; []
    on another database's pages."""
    return result() if database is None else for_stores(datasette, database, result, [])


def audio_url(datasette, line_id: Any, context: float = 0.0) -> str:
    # str(): Datasette's URL strings look attributes up slowly, and cells are rendered by the thousand.
    url = str(datasette.urls.path(f"/-/intercept/audio/{int(line_id)}.wav"))
    return url + (f"?context={context:g}" if context else "")


def local_path(candidate: str) -> Optional[str]:
    """`candidate` if it is a path on this site (so the redirect cannot leave it), else None."""
    if candidate.startswith("/") and not candidate.startswith("//") and "\\" not in candidate:
        return candidate
    return None
