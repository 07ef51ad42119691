"""Full-text search of the lines for the review desk: a reviewer's query as an FTS5 expression
over `lines_fts`, Farsi words widened to their inflected forms (intercept.text.search_forms)."""
from __future__ import annotations

import re
from typing import Callable, Optional, Sequence

OR_WORDS = frozenset({"OR", "or", "|"})  # what separates alternatives in a query
MAX_TERMS = 16
ARABIC_SCRIPT = re.compile(r"[\u0600-\u06FF\u0750-\u077F\u08A0-\u08FF\uFB50-\uFDFF\uFE70-\uFEFF]")
_QUERY_WORD = re.compile(r"[^\s\"()*:^+\-]+")


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def fts_expression(query: str, farsi_forms: Callable[[str], Sequence[tuple[str, bool]]]) -> Optional[str]:
    """An FTS5 MATCH expression for `query`: words all required, `OR` (or `|`) between two
    words makes either do; a Farsi word matches any of farsi_forms(word) ((form, prefix) pairs),
    an English word itself. None when the query holds no word. FTS syntax typed by the reviewer
    (quotes, NEAR, column filters) is not passed through: every word is quoted."""
    # Each required term is a list of alternatives (a word's forms; words joined by OR).
    terms: list[list[str]] = []
    pending_or = False
    for word in _QUERY_WORD.findall(query or "")[: MAX_TERMS * 2]:
        if word in OR_WORDS:
            pending_or = bool(terms)
            continue
        if ARABIC_SCRIPT.search(word):
            alternatives = [_quoted(form) + ("*" if prefix else "") for form, prefix in farsi_forms(word)]
        else:
            alternatives = [_quoted(word)]
        if not alternatives:
            continue
        if pending_or:
            terms[-1].extend(alternatives)
        else:
            terms.append(alternatives)
        pending_or = False
    # FTS5 binds AND tighter than OR, so every alternative list is bracketed.
    parts = [alts[0] if len(alts) == 1 else "(" + " OR ".join(alts) + ")" for alts in terms[:MAX_TERMS]]
    return " AND ".join(parts) or None


def search_line_ids(conn, expression: str, limit: int = 200) -> list[int]:
    """Ids of the lines matching the FTS5 `expression`, best match first."""
    return [row[0] for row in conn.execute(
        "SELECT rowid FROM lines_fts WHERE lines_fts MATCH ? ORDER BY rank LIMIT ?", [expression, limit]).fetchall()]
