"""A line's review block (on the queue, the context, period and search pages, and in
`/-/intercept/review.json`): every flag concept with its outcome, every verdict with reviewer,
time and note, buttons for a verdict per concept, withdrawal, a lead's decision, notes, claims
and a reviewer flag. What a verdict means is defined once, in intercept.store.team.
"""
from __future__ import annotations

import html
from typing import Any, Optional

from markupsafe import Markup

from intercept.store import VERDICTS
from intercept.store import review as store_review
from intercept.store import team as store_team

from .site import DECIDE, MAX_NOTE_CHARS, WRITE_VERDICT

VERDICT_LABELS = {"confirmed": "confirmed", "false_positive": "false positive", "unsure": "unsure",
                  store_team.WITHDRAWN: "withdrawn", store_team.DISPUTED: "disputed"}
# The desk's top menu on every intercept page (templates/_crumbs.html).


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


# ---------------------------------------------------------------- who is asking


async def viewer(datasette, request) -> dict:
    actor = request.actor or {}
    can_write = await datasette.permission_allowed(request.actor, WRITE_VERDICT, default=False)
    is_lead = await datasette.permission_allowed(request.actor, DECIDE, default=False)
    token = request.scope["csrftoken"]() if can_write and "csrftoken" in request.scope else ""
    return {"id": actor.get("id"), "can_write": bool(can_write), "is_lead": bool(is_lead), "csrftoken": token}


# ---------------------------------------------------------------- a line's review block


def _time(at: Optional[str]) -> str:
    return (at or "")[:16].replace("T", " ")


def _form(datasette, who: dict, action: str, fields: dict, buttons: list[tuple[str, str, str]], css: str = "") -> str:
    """A POST form of hidden fields and buttons (name, value, label); desk.js sends it with fetch."""
    hidden = "".join(f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in fields.items() if v is not None)
    hidden += f'<input type="hidden" name="csrftoken" value="{_e(who["csrftoken"])}">'
    shown = "".join(f'<button type="submit" name="{_e(n)}" value="{_e(v)}" class="intercept-v-{_e(v)}">{_e(label)}</button>'
                    for n, v, label in buttons)
    return (f'<form class="intercept-action {css}" method="post" action="{_e(datasette.urls.path(action))}">'
            f"{hidden}{shown}</form>")


def review_html(datasette, who: dict, line: dict, review: dict, concepts_known: list[str]) -> Markup:
    """Every flag concept of `line` with its outcome and every verdict on it (reviewer, time,
    note), verdict, withdrawal and decision buttons for who may use them, the line's notes, a
    note box and the reviewer-flag form."""
    line_id = line["id"]
    concepts = list(dict.fromkeys(f.get("concept") for f in line.get("flags", []) if f.get("concept")))
    outcomes = review.get("concepts", {})
    rows = []
    for concept in concepts:
        outcome = outcomes.get(concept, {})
        state = outcome.get("outcome")
        verdicts = [v for v in review.get("verdicts", []) if v.get("concept") in (concept, None)]
        mine = None
        for v in verdicts:
            if v["reviewer"] == who["id"] and not v["decision"]:
                mine = None if v["verdict"] == store_team.WITHDRAWN else v["verdict"]
        badge = (f'<span class="intercept-outcome intercept-v-{_e(state or "none")}">'
                 f'{_e(VERDICT_LABELS.get(state, "awaiting review") if state else "awaiting review")}'
                 f'{" (lead&#39;s decision)" if outcome.get("decision") else ""}</span>')
        if outcome.get("differ") and outcome.get("decision"):
            badge += ' <span class="intercept-differ">reviewers differed</span>'
        controls = ""
        if who["can_write"]:
            buttons = [("verdict", v, VERDICT_LABELS[v]) for v in VERDICTS]
            if mine:
                buttons.append(("verdict", store_team.WITHDRAWN, f"withdraw my {VERDICT_LABELS[mine]}"))
            controls += _form(datasette, who, "/-/intercept/verdict",
                              {"line_id": line_id, "concept": concept}, buttons, "intercept-concept-verdict")
            if who["is_lead"] and (outcome.get("differ") or outcome.get("decision")):
                decide = [("verdict", v, "decide: " + VERDICT_LABELS[v]) for v in VERDICTS]
                if outcome.get("decision"):
                    decide.append(("verdict", store_team.WITHDRAWN, "withdraw the decision"))
                controls += _form(datasette, who, "/-/intercept/verdict",
                                  {"line_id": line_id, "concept": concept, "decision": "1"}, decide, "intercept-decide")
        history = "".join(
            f'<li class="intercept-history-{_e(v["verdict"])}{" intercept-decision" if v["decision"] else ""}">'
            f'<b>{_e(v["reviewer"])}</b>{" (lead)" if v["decision"] else ""}: '
            f'{_e(VERDICT_LABELS.get(v["verdict"], v["verdict"]))} · <time>{_e(_time(v["at"]))}</time>'
            + (f' · <q dir="auto">{_e(v["note"])}</q>' if v.get("note") else "") + "</li>"
            for v in verdicts)
        rows.append(
            f'<div class="intercept-concept" data-concept="{_e(concept)}" data-outcome="{_e(state or "")}">'
            f'<div class="intercept-concept-head"><b>{_e(concept)}</b> {badge} {controls}</div>'
            + (f'<ul class="intercept-history">{history}</ul>' if history else "") + "</div>")
    notes = "".join(f'<li><b>{_e(n["reviewer"])}</b> · <time>{_e(_time(n["at"]))}</time>: '
                    f'<span dir="auto">{_e(n["note"])}</span></li>' for n in review.get("notes", []))
    parts = [f'<div class="intercept-review" data-line-id="{line_id}">', *rows]
    if who["can_write"] and line.get("recording_id") is not None:
        # Claim the line's recording (or its hour of traffic) so that others' queues leave it.
        claims = _form(datasette, who, "/-/intercept/claim", {"recording_id": line["recording_id"]},
                       [("claim", "recording", "claim this recording")], "intercept-claim")
        if line.get("at"):
            claims += _form(datasette, who, "/-/intercept/claim", {"hour": str(line["at"])[:13]},
                            [("claim", "hour", f"claim {str(line['at'])[11:13]}:00 UTC")], "intercept-claim")
        parts.append(f'<div class="intercept-claims-line">{claims}</div>')
    if notes:
        parts.append(f'<ul class="intercept-line-notes">{notes}</ul>')
    if who["can_write"]:
        parts.append(
            f'<form class="intercept-action intercept-note-form" method="post" action="{_e(datasette.urls.path("/-/intercept/note"))}">'
            f'<input type="hidden" name="line_id" value="{line_id}"><input type="hidden" name="csrftoken" value="{_e(who["csrftoken"])}">'
            f'<textarea name="note" dir="auto" rows="1" maxlength="{MAX_NOTE_CHARS}" '
            'placeholder="note (Ctrl+Enter saves it, Esc back to the keys)"></textarea>'
            '<button type="submit">save note</button></form>')
        options = "".join(f'<option value="{_e(c)}">' for c in concepts_known)
        parts.append(
            f'<details class="intercept-add-flag"><summary>mark as coded</summary>'
            f'<form class="intercept-action intercept-flag-form" method="post" action="{_e(datasette.urls.path("/-/intercept/reviewer-flag"))}">'
            f'<input type="hidden" name="line_id" value="{line_id}"><input type="hidden" name="csrftoken" value="{_e(who["csrftoken"])}">'
            f'<label>concept <input name="concept" dir="auto" list="intercept-concepts-{line_id}" required '
            f'placeholder="a lexicon concept or a new term"></label><datalist id="intercept-concepts-{line_id}">{options}</datalist> '
            '<label>heard as <input name="heard_form" dir="auto" placeholder="the word as heard (optional)"></label> '
            '<label><input type="checkbox" name="suggest" value="1"> propose it to the lexicon</label> '
            '<label>note <input name="note" dir="auto"></label> <button type="submit">add reviewer flag</button>'
            "</form></details>")
    parts.append("</div>")
    return Markup("".join(parts))


async def review_blocks(datasette, request, database, lines: list[dict]) -> dict[int, Markup]:
    """review_html of each described line, for `request`'s viewer."""
    if not lines:
        return {}
    who = await viewer(datasette, request)
    reviews = await database.execute_fn(lambda conn: store_team.review_of_lines(conn, [line["id"] for line in lines]))
    known = await database.execute_fn(store_review.known_concepts) if who["can_write"] else []
    return {line["id"]: review_html(datasette, who, line, reviews.get(line["id"], {}), known) for line in lines}
