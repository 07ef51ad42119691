"""The review desk's own routes (registered by plugin.py):

- `/-/intercept/lines.json?ids=1,2`: each line's marked Farsi and English, trust and flags as
  HTML fragments; desk.js puts them into Datasette's table cells;
- `/-/intercept/context/{line_id}`: the line with the transmissions before and after it
  (`?whole=1`: every line of its recording in order);
- `/-/intercept/activity?by=hour|day`: traffic over time as an SVG bar chart;
- `/-/intercept/period?start=..&end=..&show=all|flagged|confirmed`: the lines behind one bar;
- `/-/intercept/bundle.zip?ids=1,2`: an evidence bundle (intercept.bundle) of those lines, at
  most `bundle_max_lines` lines a request and one request at a time per reviewer.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import tempfile
from pathlib import Path

from datasette.utils.asgi import Response

from . import desk
from .doors import doors_of, requester
from .render import line_ids, render_page
from .site import config, store_database


def _text(message: str, status: int) -> Response:
    return Response.text(message + "\n", status=status)


async def lines_json(request, datasette):
    try:
        ids = line_ids(request)
    except ValueError as error:
        return _text(str(error), 400)
    database = await store_database(datasette)
    if database is None:
        return _text("no intercept store is open", 404)
    described = await desk.describe_lines(database, ids)
    return Response.json({str(line_id): desk.fragments(line) for line_id, line in described.items()})


async def context_page(request, datasette):
    line_id = int(request.url_vars["line_id"])
    whole = request.args.get("whole") == "1"
    database = await store_database(datasette)
    if database is None:
        return _text("no intercept store is open", 404)
    found = await desk.context_ids(database, line_id, whole)
    if found is None:
        return _text(f"no line {line_id} in the store", 404)
    line, ids = found
    described = await desk.describe_lines(database, ids)
    lines = [described[i] for i in ids if i in described]
    focus = described[line_id]
    title = (f"Every line of {focus['recording_name']}" if whole
             else f"Line {line_id} in context: {desk.CONTEXT_LINES} transmissions either side")
    return await render_page(datasette, request, "intercept_lines.html", {
        "title": title, "lines": lines, "focus_id": line_id, "whole": whole,
        "recording_name": focus["recording_name"], "recording_path": focus["recording_path"],
        "other_view": (datasette.urls.path(f"/-/intercept/context/{line_id}" + ("" if whole else "?whole=1")),
                       "only the transmissions around the line" if whole else "every line of the recording, in order"),
        "desk": desk,
    })


async def activity_page(request, datasette):
    by = request.args.get("by", "hour")
    if by not in desk.BUCKETS:
        return _text(f"by must be one of {', '.join(desk.BUCKETS)}, got {by!r}", 400)
    database = await store_database(datasette)
    if database is None:
        return _text("no intercept store is open", 404)
    buckets = await desk.activity(database, by)
    period = datasette.urls.path("/-/intercept/period")
    chart = desk.activity_svg(buckets or [], by, lambda s, e, show: period + "?" + desk.period_query(s, e, show))
    return await render_page(datasette, request, "intercept_activity.html", {
        "title": f"Traffic per {by}", "by": by, "buckets": buckets, "chart": chart, "series": desk.SERIES,
        "other": [b for b in desk.BUCKETS if b != by],
    })


async def period_page(request, datasette):
    start = desk.parse_bucket(request.args.get("start", ""))
    end = desk.parse_bucket(request.args.get("end", ""))
    show = request.args.get("show", "all")
    if start is None or end is None or end <= start or end - start > _dt.timedelta(days=31):
        return _text("start and end must be ISO times, end after start, at most 31 days apart", 400)
    if show not in ("all", "flagged", "confirmed"):
        return _text(f"show must be all, flagged or confirmed, got {show!r}", 400)
    database = await store_database(datasette)
    if database is None:
        return _text("no intercept store is open", 404)
    ids = await desk.period_ids(database, start, end, show)
    described = await desk.describe_lines(database, ids)
    label = {"all": "Lines", "flagged": "Flagged lines", "confirmed": "Confirmed lines"}[show]
    return await render_page(datasette, request, "intercept_lines.html", {
        "title": f"{label} from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC",
        "lines": [described[i] for i in ids if i in described], "focus_id": None, "whole": False,
        "recording_name": None, "other_view": (datasette.urls.path("/-/intercept/activity"), "back to the chart"),
        "desk": desk,
    })


def _bundle_bytes(store_path: str, ids: list[int], lead_in_s: float) -> bytes:
    from intercept.bundle import BundleOptions, write_bundle
    from intercept.store import READ, Store

    with tempfile.TemporaryDirectory() as folder, Store(store_path, READ) as store:
        out = Path(folder) / "bundle.zip"
        write_bundle(store, out, BundleOptions(line_ids=ids, lead_in_s=lead_in_s))
        return out.read_bytes()


async def bundle_download(request, datasette):
    """The evidence bundle of the lines a reviewer has on screen (their ids)."""
    from intercept.bundle import BundleError

    try:
        ids = line_ids(request)
    except ValueError as error:
        return _text(str(error), 400)
    if not ids:
        return _text("give the lines as ?ids=1,2,3", 400)
    doors = doors_of(datasette)
    if len(set(ids)) > doors.bundle_max_lines:
        return _text(f"at most {doors.bundle_max_lines} lines per bundle, asked for {len(set(ids))}: "
                     "ask for fewer, or use `intercept export --format bundle`", 400)
    database = await store_database(datasette)
    if database is None:
        return _text("no intercept store is open", 404)
    lead_in_s = float(config(datasette).get("context_s", 2.0))
    # Cutting clips takes seconds of CPU: one bundle at a time per reviewer, in a worker thread.
    claim = doors.claim("bundle", requester(request))
    if claim is None:
        return Response.text("your previous bundle is still being made: wait for it, then ask again\n",
                             status=429, headers={"retry-after": "5"})

    def cut() -> bytes:
        # The claim ends with the work, not with the request: a reviewer who goes away cannot
        # start a second bundle while the first is still being cut.
        with claim:
            return _bundle_bytes(database.path, ids, lead_in_s)

    try:
        data = await asyncio.to_thread(cut)
    except BundleError as error:
        return _text(str(error), 410)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Response(data, content_type="application/zip", headers={
        "content-disposition": f'attachment; filename="intercept-evidence-{stamp}.zip"'})
