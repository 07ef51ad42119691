"""The store's side of `intercept export --format corpus`: the lines reviewers corrected.

A line belongs to the corpus when it has a reviewer's revision (`line_revisions`, kept by the
corrections work of issue 24); its transcript is the latest revision's Farsi. The recogniser's
own text is never a label, so a store without revisions gives no lines.
"""
from __future__ import annotations

from typing import Iterator

import sqlite_utils


def corrected_lines(db: sqlite_utils.Database) -> Iterator[dict]:
    """Each corrected line, in recording and time order: line_id, recording_id, start_s, end_s,
    recording_path, recording_sha256, transcript (the latest revision's Farsi), reviewer,
    revised_at, revision_id, voice_id and voice_name (None when voices were not grouped)."""
    tables = set(db.table_names())
    if "line_revisions" not in tables:
        return iter(())
    has_voices = "voices" in tables and "voice_id" in db["transmissions"].columns_dict
    # A merged voice is reported as the voice it went into (one step: merges point at an open voice).
    voice = ("COALESCE(voices.merged_into, voices.id) AS voice_id, "
             "COALESCE(merged.name, voices.name) AS voice_name" if has_voices else
             "NULL AS voice_id, NULL AS voice_name")
    voice_join = ("LEFT JOIN voices ON voices.id = transmissions.voice_id "
                  "LEFT JOIN voices AS merged ON merged.id = voices.merged_into" if has_voices else "")
    sql = f"""
        SELECT lines.id AS line_id, lines.recording_id, lines.start_s, lines.end_s,
               recordings.path AS recording_path, recordings.sha256 AS recording_sha256,
               revision.text_fa AS transcript, revision.reviewer, revision.at AS revised_at,
               revision.id AS revision_id, {voice}
        FROM line_revisions AS revision
        JOIN (SELECT line_id, MAX(id) AS id FROM line_revisions GROUP BY line_id) AS latest
          ON latest.id = revision.id
        JOIN lines ON lines.id = revision.line_id
        JOIN recordings ON recordings.id = lines.recording_id
        LEFT JOIN transmissions ON transmissions.id = lines.transmission_id
        {voice_join}
        WHERE TRIM(COALESCE(revision.text_fa, '')) != ''
        ORDER BY lines.recording_id, lines.start_s, lines.id
    """
    return iter(db.query(sql))
