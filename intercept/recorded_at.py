"""When a recording was made, so that its lines have absolute times (traffic over time).

    recorded_at_for(path)                         # "2019-11-12T21:30:45+00:00" or None
    recorded_at_for(path, given="2019-11-12T21:30:45+03:30")

Sources, first found wins:
1. `given`: `intercept run --recorded-at ISO` (an ISO 8601 date and time);
2. a sidecar file beside the recording, `NAME.json` or `NAME.EXT.json`, holding `recorded_at`
   (ISO 8601) or `start_time` (Unix seconds, as trunk-recorder's call JSON writes it);
3. the container's tags as ffprobe reads them: `creation_time`, `date`, `DATE`, ... (a WAV's
   INFO/ICRD and BWF origination date appear as these);
4. a time stamp in the file name: `20191112_213045` / `20191112-213045` / `20191112213045`
   (SDRTrunk, rdio-scanner's #DATE_#TIME masks, rtl_fm scripts), `2019-11-12T21-30-45` / `2019-11-12_21.30.45`
   / `2019-11-12 21:30:45`, or trunk-recorder's `TALKGROUP-UNIXTIME_FREQ.wav`.

Times are stored in UTC. A time without a zone (file names, most tags) is taken as UTC: pass
`--recorded-at` with an offset when the recorder ran on local time.
"""
from __future__ import annotations

import datetime as _dt
import json
import re
from pathlib import Path
from typing import Callable, Optional

# A sidecar may not be larger than this: it is a small JSON object, never a data file.
MAX_SIDECAR_BYTES = 1 << 20
TAG_NAMES = ("creation_time", "date", "DATE", "date_recorded", "ICRD", "origination_date", "com.apple.quicktime.creationdate")
# Plausible recording years, so that a frequency or an id in a name is not read as a time.
EARLIEST_YEAR, LATEST_YEAR = 1990, 2100

_COMPACT = re.compile(r"(?<!\d)(\d{4})(\d{2})(\d{2})[_\-T ]?(\d{2})(\d{2})(\d{2})(?!\d)")
_SEPARATED = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})[T_ ](\d{2})[-:.h](\d{2})[-:.m](\d{2})(?!\d)")
_UNIX_SECONDS = re.compile(r"(?:^|-)(\d{10})(?=_|\.|$)")  # trunk-recorder: 9001-1573594245_851012500


class RecordedAtError(ValueError):
    """A given time cannot be read; the message says what was given and what is expected."""


def _utc(moment: _dt.datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    return moment.astimezone(_dt.timezone.utc).isoformat(timespec="seconds")


def _plausible(moment: _dt.datetime) -> bool:
    return EARLIEST_YEAR <= moment.year <= LATEST_YEAR


def parse_iso(text: str) -> str:
    """An ISO 8601 date-time (a trailing Z allowed) as UTC ISO text; RecordedAtError if not one."""
    value = str(text).strip()
    try:
        moment = _dt.datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value)
    except ValueError:
        raise RecordedAtError(f"{text!r} is not an ISO 8601 date and time (e.g. 2019-11-12T21:30:45+03:30)") from None
    return _utc(moment)


def from_name(path: str | Path) -> Optional[str]:
    """The time stamp in a recording's file name, or None."""
    name = Path(path).name
    for pattern in (_SEPARATED, _COMPACT):
        for match in pattern.finditer(name):
            try:
                moment = _dt.datetime(*(int(part) for part in match.groups()))
            except ValueError:  # 20191399_... is not a date
                continue
            if _plausible(moment):
                return _utc(moment)
    match = _UNIX_SECONDS.search(Path(path).stem)
    if match:
        moment = _dt.datetime.fromtimestamp(int(match.group(1)), _dt.timezone.utc)
        if _plausible(moment):
            return _utc(moment)
    return None


def from_tags(tags: dict) -> Optional[str]:
    """A recording time from container tags (ffprobe's format.tags), or None."""
    lowered = {str(key).lower(): value for key, value in (tags or {}).items()}
    for name in TAG_NAMES:
        value = lowered.get(name.lower())
        if not value:
            continue
        try:
            moment = parse_iso(str(value).replace(" ", "T", 1))
        except RecordedAtError:
            continue
        if _plausible(_dt.datetime.fromisoformat(moment)):
            return moment
    return None


def sidecar_paths(path: str | Path) -> list[Path]:
    path = Path(path)
    return [path.with_suffix(".json"), path.with_name(path.name + ".json")]


def from_sidecar(path: str | Path) -> Optional[str]:
    """`recorded_at` (ISO) or `start_time` (Unix seconds) from a JSON file beside the recording.
    Raises RecordedAtError naming the sidecar when it exists but cannot be used."""
    for sidecar in sidecar_paths(path):
        if sidecar == Path(path) or not sidecar.is_file():
            continue
        try:
            if sidecar.stat().st_size > MAX_SIDECAR_BYTES:
                raise RecordedAtError(f"{sidecar}: sidecar larger than {MAX_SIDECAR_BYTES} bytes")
            data = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RecordedAtError(f"{sidecar}: cannot read the sidecar: {error}") from None
        if not isinstance(data, dict):
            continue
        if data.get("recorded_at"):
            try:
                return parse_iso(data["recorded_at"])
            except RecordedAtError as error:
                raise RecordedAtError(f"{sidecar}: recorded_at {error}") from None
        if isinstance(data.get("start_time"), (int, float)) and not isinstance(data["start_time"], bool):
            return _utc(_dt.datetime.fromtimestamp(float(data["start_time"]), _dt.timezone.utc))
    return None


def _ffprobe_tags(path: str | Path) -> dict:
    from pydub.utils import mediainfo_json  # pydub's ffprobe wrapper, as intercept.audio uses

    from .audio import container_tags

    try:
        info = mediainfo_json(str(path))
    except Exception:  # no ffprobe, or not a container it knows: no tags
        return {}
    return container_tags(info)


def recorded_at_for(path: str | Path, given: Optional[str] = None,
                    read_tags: Callable[[str | Path], dict] = _ffprobe_tags) -> Optional[str]:
    """When the recording at `path` was made, as UTC ISO text, or None when nothing says.
    Raises RecordedAtError for a bad `given` time or an unusable sidecar."""
    if given:
        return parse_iso(given)
    return from_sidecar(path) or from_tags(read_tags(path)) or from_name(path)


def absolute_time(recorded_at: Optional[str], offset_s: Optional[float]) -> Optional[str]:
    """recorded_at plus an offset in the recording, as UTC ISO text (None when unknown)."""
    if not recorded_at or offset_s is None:
        return None
    try:
        start = _dt.datetime.fromisoformat(recorded_at)
    except ValueError:
        return None
    return _utc(start + _dt.timedelta(seconds=float(offset_s)))
