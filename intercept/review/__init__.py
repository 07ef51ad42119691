"""The review UI: Datasette over the store, with the intercept plugin and metadata.

    ds = make_datasette("store.db", ReviewOptions(accounts={"maryam": hash_password("...")}))
    serve("store.db", port=8001)

Reviewers log in with password hashes (never passwords). With accounts, every page, clip and
bundle needs a login unless `public_read` is set; only logged-in reviewers write. Without
accounts anyone who reaches the server reads, and `serve` listens on a loopback address only.
The doors (logins, sessions, CSRF, throttling) are intercept.review.doors.
"""
from __future__ import annotations

import os
import re
import threading
import webbrowser
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional, Sequence

import yaml
from datasette_auth_passwords.utils import hash_password

from ..scoring import DEFAULT_THRESHOLD
from . import doors as review_doors
from . import plugin as review_plugin
from .doors import is_loopback

if TYPE_CHECKING:
    from datasette.app import Datasette

__all__ = [
    "ReviewError",
    "ReviewOptions",
    "accounts_from_environ",
    "check_binding",
    "check_store",
    "hash_password",
    "is_loopback",
    "load_accounts",
    "load_leads",
    "make_datasette",
    "metadata_for",
    "serve",
]

METADATA_PATH = Path(__file__).parent / "metadata.yaml"
STORE_PLACEHOLDER = "_store"  # the databases key in metadata.yaml standing for the store
ENVIRON_PREFIX = "INTERCEPT_REVIEWER_"  # INTERCEPT_REVIEWER_<NAME>=<password hash>
ACCOUNT_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
HASH_FORMAT = re.compile(r"^pbkdf2_sha256\$[0-9]+\$[^$]+\$[A-Za-z0-9+/=]+$")
# Facet suggestions run a few queries per column on every page (most of the start page's time
# on a large store) and reviewers have the configured facets; so they are off.
DEFAULT_SETTINGS = {"suggest_facets": False}


class ReviewError(ValueError):
    """The store or the reviewer accounts cannot be used; the message names the file and why."""


@dataclass
class ReviewOptions:
    """How the review UI runs."""

    # reviewer name -> password hash from hash_password() / `datasette hash-password`
    accounts: Mapping[str, str] = field(default_factory=dict)
    # seconds either side of a line offered by the "±" link next to its player
    context_s: float = 2.0
    # signs cookies and forms' CSRF tokens (Datasette makes one per start when None); logins
    # themselves end with the process (doors.Sessions)
    secret: Optional[str] = None
    # extra Datasette settings, e.g. {"sql_time_limit_ms": 3000}; they override DEFAULT_SETTINGS
    settings: Mapping[str, object] = field(default_factory=dict)
    # with accounts, let anyone read (a deliberate public review); writing still needs a login
    public_read: bool = False
    # how long a login lasts; logout ends it at once
    session_hours: float = review_doors.DEFAULT_SESSION_HOURS
    # served behind TLS (a proxy that terminates https): cookies are marked Secure
    https: bool = False
    # most lines one evidence bundle request may ask for
    bundle_max_lines: int = review_doors.DEFAULT_BUNDLE_MAX_LINES
    # what a reviewer's correction is derived with (intercept.review.corrections): lexicon files
    # or folders (default: the shipped lexicons), and a text translator for the English of a
    # corrected line when the reviewer types none ("transformers" with mt_model; default: none)
    lexicons: Sequence[str] = ()
    translator: Optional[str] = None
    mt_model: Optional[str] = None
    # reviewers who may decide a flag reviewers disagree on (role `lead` in the accounts file)
    leads: frozenset = frozenset()
    # a claim on a recording or hour lapses this long after its holder's last verdict or note
    claim_idle_s: float = 30 * 60


ROLES = ("reviewer", "lead")


def _entry(name, value, source: str) -> tuple[object, str]:
    """(password hash, role) of one accounts entry: `name: HASH` or `name: {password_hash: HASH, role: lead}`."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"password_hash", "role"})
        if unknown:
            raise ReviewError(f"{source}: reviewer {name!r}: unknown key(s) {', '.join(map(str, unknown))} "
                              "(give password_hash and role)")
        role = value.get("role", "reviewer")
        if role not in ROLES:
            raise ReviewError(f"{source}: reviewer {name!r}: role must be one of {', '.join(ROLES)}, not {role!r}")
        return value.get("password_hash"), role
    return value, "reviewer"


def _check_accounts(accounts: Mapping[str, str], source: str) -> dict:
    checked = {}
    for name, entry in accounts.items():
        password_hash, _role = _entry(name, entry, source)
        if not ACCOUNT_NAME.match(str(name)):
            raise ReviewError(f"{source}: reviewer name {name!r} must be 1-64 letters, digits, '_', '.' or '-'")
        if not isinstance(password_hash, str) or not HASH_FORMAT.match(password_hash.strip()):
            raise ReviewError(
                f"{source}: reviewer {name!r} needs a password hash from "
                "`datasette hash-password` (pbkdf2_sha256$...), not a password"
            )
        checked[str(name)] = password_hash.strip()
    return checked


def _read_accounts(path: Path):
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ReviewError(f"{path}: cannot read reviewer accounts: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise ReviewError(f"{path}: not valid YAML/JSON: {error}") from error
    if not isinstance(data, dict):
        raise ReviewError(f"{path}: expected a mapping of reviewer name to password hash")
    return data


def load_accounts(path: str | os.PathLike) -> dict:
    """Reviewer accounts from a YAML or JSON file mapping name -> password hash, or name ->
    {password_hash: ..., role: reviewer|lead}."""
    return _check_accounts(_read_accounts(Path(path)), str(path))


def load_leads(path: str | os.PathLike) -> frozenset:
    """The names whose role is `lead` in an accounts file (they decide disputed flags)."""
    data = _read_accounts(Path(path))
    _check_accounts(data, str(path))
    return frozenset(str(name) for name, entry in data.items() if _entry(name, entry, str(path))[1] == "lead")


def accounts_from_environ(environ: Mapping[str, str]) -> dict:
    """Reviewer accounts from variables INTERCEPT_REVIEWER_<NAME>=<password hash>; names are
    lower-cased (INTERCEPT_REVIEWER_MARYAM logs in as "maryam")."""
    found = {
        key[len(ENVIRON_PREFIX):].lower(): value
        for key, value in environ.items()
        if key.startswith(ENVIRON_PREFIX) and len(key) > len(ENVIRON_PREFIX)
    }
    return _check_accounts(found, "environment")


def check_store(db_path: str | os.PathLike) -> Optional[str]:
    """The review's start-up check, which writes nothing: ReviewError (one line naming the
    file and the reason) unless db_path is an intercept store of this intercept's schema.
    Returns why the store cannot be written (a read-only file or directory), or None: such a
    store is served read-only, and no verdict can be recorded."""
    from intercept.store import READ, Store, StoreError, write_problem

    db_path = Path(db_path)
    if not db_path.is_file():
        raise ReviewError(f"{db_path}: no such store file")
    try:
        Store(db_path, READ).close()
    except StoreError as error:
        raise ReviewError(str(error)) from None
    return write_problem(db_path)


def metadata_for(database_name: str, options: ReviewOptions, read_only: bool = False) -> dict:
    """metadata.yaml with the store's database name filled in and the plugin configuration."""
    metadata = yaml.safe_load(METADATA_PATH.read_text(encoding="utf-8"))
    databases = metadata.setdefault("databases", {})
    databases[database_name] = databases.pop(STORE_PLACEHOLDER, {})
    flagged = databases[database_name].get("tables", {}).get("flagged_lines", {})
    if "description" in flagged:  # the queue's threshold as the code has it, never a copy
        flagged["description"] = flagged["description"].replace("{threshold}", f"{DEFAULT_THRESHOLD:g}")
    accounts = dict(options.accounts)
    metadata["plugins"] = {
        review_plugin.PLUGIN_NAME: {
            "database": database_name,
            "reviewers": sorted(accounts),
            "context_s": float(options.context_s),
            "start_page": True,
            "read_only": read_only,
            # Only switches: the password hashes stay on the Datasette (doors.Doors.accounts),
            # since /-/metadata.json shows the metadata.
            "doors": {
                "login": bool(accounts),
                "public_read": bool(options.public_read),
                "session_hours": float(options.session_hours),
                "https": bool(options.https),
                "bundle_max_lines": int(options.bundle_max_lines),
            },
            "corrections": {"lexicons": [str(p) for p in options.lexicons], "translator": options.translator,
                            "mt_model": options.mt_model},
            "leads": sorted(set(options.leads) & set(accounts)),
            "claim_idle_s": float(options.claim_idle_s),
        },
    }
    return metadata


def _register_plugin() -> None:
    # Imported here, not at the top: when installed, Datasette imports our plugin while
    # datasette.plugins is itself still importing, and datasette.app needs it complete.
    from datasette.plugins import pm

    # Installed, intercept's entry point has registered the plugin already; before
    # installation (a checkout, the tests) we register it here, once.
    if not pm.is_registered(review_plugin):
        pm.register(review_plugin, name="intercept")
    from . import voices as voices_plugin  # the voices pages, facet and links (entry point intercept_voices)

    if not pm.is_registered(voices_plugin):
        pm.register(voices_plugin, name="intercept_voices")
    if not pm.is_registered(review_doors):
        pm.register(review_doors, name="intercept_doors")
    from . import corrections as corrections_plugin  # editing lines (entry point intercept_corrections)

    if not pm.is_registered(corrections_plugin):
        pm.register(corrections_plugin, name="intercept_corrections")


def make_datasette(db_path: str | os.PathLike, options: Optional[ReviewOptions] = None) -> "Datasette":
    """A Datasette over the store at `db_path` with the review plugin, metadata and accounts."""
    from datasette.app import Datasette  # see _register_plugin for why not at the top

    options = options or ReviewOptions()
    if not 0 <= options.context_s <= review_plugin.MAX_CONTEXT_S:
        raise ReviewError(f"context_s must be between 0 and {review_plugin.MAX_CONTEXT_S:g}, got {options.context_s}")
    accounts = _check_accounts(options.accounts, "options.accounts")
    if not options.session_hours > 0:
        raise ReviewError(f"session_hours must be more than 0, got {options.session_hours}")
    if not options.bundle_max_lines >= 1:
        raise ReviewError(f"bundle_max_lines must be at least 1, got {options.bundle_max_lines}")
    db_path = Path(db_path)
    read_only = check_store(db_path) is not None
    _register_plugin()
    database_name = db_path.stem  # the name Datasette gives a single file
    # A store that cannot be written is opened immutable: SQLite's read-only mode would need
    # to create the WAL's -shm file beside it, which a read-only directory refuses.
    datasette = Datasette(
        files=[] if read_only else [str(db_path)],
        immutables=[str(db_path)] if read_only else [],
        metadata=metadata_for(database_name, replace(options, accounts=accounts), read_only),
        settings={**DEFAULT_SETTINGS, **({"force_https_urls": True} if options.https else {}), **options.settings},
        secret=options.secret,
        # Datasette's _crumbs.html with the desk's top menu (and the desk's own templates).
        template_dir=str(Path(__file__).parent / "templates"),
    )
    review_doors.doors_of(datasette).accounts = accounts
    return datasette


def check_binding(host: str, options: ReviewOptions) -> None:
    """ReviewError unless serving on `host` with `options` keeps reading to those meant to
    read: without accounts (nobody logs in, anyone reads) only a loopback address, unless
    public_read says an open review is meant."""
    if not options.accounts and not options.public_read and not review_doors.is_loopback(host):
        raise ReviewError(
            f"no reviewer accounts: anyone reaching {host} could read every line and its audio; "
            "give --accounts (reviewers log in), or --public-read to mean an open review")


def serve(
    db_path: str | os.PathLike,
    port: int = 8001,
    host: str = "127.0.0.1",
    open_browser: bool = False,
    options: Optional[ReviewOptions] = None,
) -> None:
    """Run the review UI until interrupted."""
    import uvicorn  # installed with datasette; only needed to serve

    options = options or ReviewOptions()
    check_binding(host, options)
    datasette = make_datasette(db_path, options)
    if open_browser:
        url = f"http://{host}:{port}/"
        # Give the server a moment to listen before the browser asks.
        threading.Timer(1.0, webbrowser.open, args=[url]).start()
    uvicorn.run(datasette.app(), host=host, port=port, lifespan="on")
