"""Evidence bundles: the chosen lines' audio cut from the originals, with a manifest that says
where each clip came from, and a check that it still does.

    with Store("traffic.db") as store:
        write_bundle(store, "evidence.zip", BundleOptions(confirmed_only=True))
    report = verify_bundle("evidence.zip", originals="/recordings")
    report.ok, report.problems                  # each problem names the file

A bundle is a ZIP holding
- `clips/line-<id>.wav`: the line with `lead_in_s` either side (clamped to the recording),
  16-bit PCM mono at the original's own sample rate, cut by ffmpeg from the original
  (intercept.audio.extract_clip): sample for sample the original's mono 16-bit decode over that
  range, nothing re-encoded lossily;
- `manifest.json`: per line the recording's path, SHA-256 and time, the clip's name, SHA-256,
  sample rate and start/end in the original, the Farsi (raw and normalised), the English with
  its reliability (intercept.reliability), the flags with their evidence, the verdicts with
  reviewer and time, engine, model, translator and lexicon version; a corrected line's machine
  text beside its current text, and its revisions (intercept.corrections);
- `manifest.json.sha256`: the manifest's own SHA-256, so an edited manifest is reported.

The manifest also lists under `missing` every chosen line whose clip could not be cut (its
recording unreadable or changed, the line past the recording's end), with the reason: a bundle
is never silently short. `intercept export --format bundle` names each and exits 1, and
`verify --bundle` reports them and does not call such a bundle intact. `store_seal` is the
store's chain head when the bundle was made (intercept.store.seal): `intercept verify STORE
--bundle B` checks that it is in STORE's chain, which ties the bundle to that store.

The bundle holds no signature: whoever can rewrite both the manifest and its hash file can
forge one. `intercept export` prints the bundle's SHA-256; note it down or send it apart from
the bundle, and `verify --originals` re-cuts every clip from the originals.

Verification (`verify_bundle`): every clip's hash against the manifest, the manifest against
its hash file, files missing or not listed; with `originals` (a folder holding the recordings,
found by file name, or the paths in the manifest), each original's SHA-256 and that each clip is
the stated slice: decoded again from the original and compared sample by sample (at most
`tolerance` 16-bit steps apart, for decoders that round differently).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

import numpy as np

from . import __version__
from .audio import AudioError, extract_clip, probe_sample_rate, sha256_file, wav_samples
from .export import ExportError, _with_review, line_row, opened_for_export
from .recorded_at import absolute_time
from .store import Store
from .store.revisions import revisions_of

MANIFEST = "manifest.json"
MANIFEST_HASH = MANIFEST + ".sha256"
CLIPS = "clips/"
BUNDLE_FORMAT = "intercept-evidence-bundle"
BUNDLE_VERSION = 1
DEFAULT_LEAD_IN_S = 2.0
DEFAULT_TOLERANCE = 2  # 16-bit steps a re-decoded sample may differ by


class BundleError(ExportError):
    """The bundle cannot be written or read as asked; the message names the file and why."""


@dataclass
class BundleOptions:
    flagged_only: bool = False
    confirmed_only: bool = False  # lines whose latest verdict is "confirmed"
    recording_id: Optional[int] = None
    line_ids: Optional[Sequence[int]] = None  # exactly these lines (the review page's "lines on screen")
    lead_in_s: float = DEFAULT_LEAD_IN_S


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def clip_name(line_id: int) -> str:
    return f"{CLIPS}line-{int(line_id):06d}.wav"


def _chosen_lines(store: Store, options: BundleOptions) -> list[dict]:
    if options.recording_id is not None and store.recording(options.recording_id) is None:
        raise BundleError(f"{store.path}: no recording {options.recording_id} in the store")
    wanted = set(int(i) for i in options.line_ids) if options.line_ids is not None else None
    confirmed = store.confirmed_line_ids() if options.confirmed_only else None
    lines = []
    for line in store.iter_lines(options.recording_id, options.flagged_only):
        if wanted is not None and line["id"] not in wanted:
            continue
        if confirmed is not None and line["id"] not in confirmed:
            continue
        lines.append(line)
    if wanted is not None:
        missing = sorted(wanted - {line["id"] for line in lines})
        if missing and not (options.flagged_only or options.confirmed_only or options.recording_id is not None):
            raise BundleError(f"{store.path}: no line(s) {', '.join(map(str, missing))} in the store")
    return lines


def _manifest_entry(store: Store, line: dict, recording: dict, clip: dict) -> dict:
    row = _with_review(store, line_row(line))
    return {
        "line_id": line["id"],
        "recording": {"id": recording["id"], "path": recording["path"], "sha256": recording["sha256"],
                      "recorded_at": recording.get("recorded_at"), "duration_s": recording.get("duration_s")},
        "clip": clip,
        "line_start_s": line["start_s"],
        "line_end_s": line["end_s"],
        "at": absolute_time(recording.get("recorded_at"), line["start_s"]),
        "text_fa_raw": line.get("text_fa_raw"),
        "text_fa": line.get("text_fa"),
        "text_en": line.get("text_en"),
        "en_reliability": row["en_reliability"],
        "en_reliability_reason": row["en_reliability_reason"],
        "confidence": row["confidence"],
        "avg_logprob": line.get("avg_logprob"),
        "suspect": line.get("suspect"),
        "flags": row["flags"],
        "verdicts": [{key: v.get(key) for key in ("verdict", "reviewer", "at", "note", "flag_id", "concept", "decision")}
                     for v in store.verdicts_of(line["id"])],
        # Reviewers' corrections: the machine's text, where the English came from, every revision.
        "text_fa_machine": row["text_fa_machine"],
        "text_en_machine": row["text_en_machine"],
        "text_en_from": line.get("text_en_from"),
        "revisions": [{key: r[key] for key in ("id", "text_fa", "text_en", "reviewer", "at", "replaces", "note")}
                      for r in revisions_of(store.db, line["id"])],
        # The line's verdict, each flag concept's outcome, disagreement and a lead's decision.
        "review": row.get("review"),
        "engine": line.get("engine"),
        "model": line.get("model"),
        "translator": line.get("translator"),
        "translator_model": line.get("translator_model"),
        "lexicon_versions": sorted({f["lexicon_version"] for f in row["flags"] if f.get("lexicon_version")}),
    }


def write_bundle(store: Store, out: Union[str, os.PathLike], options: Optional[BundleOptions] = None,
                 warn=None) -> dict:
    """Write the evidence bundle of the chosen lines to the ZIP `out`; returns
    {"lines": n, "sha256": the bundle's hash, "skipped": [reasons], "missing": [{"line_id",
    "reason"}], "store_seal": the store's chain head}. A line whose clip cannot be cut is
    listed in the manifest's `missing` with the reason and told to `warn` (one line naming the
    line and the file); nothing is written when no line is left."""
    options = options or BundleOptions()
    lines = _chosen_lines(store, options)
    entries, skipped, missing = [], [], []
    seal = store.chain_head()
    recordings: dict[int, dict] = {}
    rates: dict[str, int] = {}
    with opened_for_export(out, binary=True) as handle, \
            zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for line in lines:
            recording = recordings.setdefault(line["recording_id"], store.recording(line["recording_id"]))
            path = recording["path"]
            try:
                if path not in rates:
                    rates[path] = probe_sample_rate(path)
                data = extract_clip(path, float(line["start_s"]), float(line["end_s"]), options.lead_in_s,
                                    sample_rate=rates[path])
            except AudioError as error:
                skipped.append(f"line {line['id']}: {error}")
                missing.append({"line_id": line["id"], "recording": {"id": recording["id"], "path": path,
                                                                      "sha256": recording["sha256"]},
                                "line_start_s": line["start_s"], "line_end_s": line["end_s"],
                                "reason": str(error)})
                if warn:
                    warn(skipped[-1])
                continue
            samples, rate = wav_samples(data)
            start = max(0.0, float(line["start_s"]) - options.lead_in_s)
            clip = {"file": clip_name(line["id"]), "sha256": _sha256(data), "start_s": round(start, 6),
                    "end_s": round(start + len(samples) / rate, 6), "sample_rate": rate,
                    "samples": int(len(samples)), "format": "wav pcm_s16le mono"}
            bundle.writestr(clip["file"], data)
            entries.append(_manifest_entry(store, line, recording, clip))
        if not entries:
            raise BundleError(f"{out}: no line to bundle" + (f" ({'; '.join(skipped)})" if skipped else ""))
        manifest = {
            "format": BUNDLE_FORMAT, "version": BUNDLE_VERSION, "intercept_version": __version__,
            "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "store": str(store.path), "lead_in_s": options.lead_in_s,
            "filters": {key: value for key, value in asdict(options).items() if key != "lead_in_s"},
            "store_seal": seal,
            "lines": entries,
            "missing": missing,
        }
        manifest_bytes = json.dumps(manifest, ensure_ascii=False, indent=1, default=list).encode("utf-8")
        bundle.writestr(MANIFEST, manifest_bytes)
        bundle.writestr(MANIFEST_HASH, f"{_sha256(manifest_bytes)}  {MANIFEST}\n")
    return {"lines": len(entries), "sha256": sha256_file(str(out)), "skipped": skipped, "missing": missing,
            "store_seal": seal}


# ---------------------------------------------------------------- verification


@dataclass
class BundleReport:
    bundle: str
    lines: int = 0
    clips_checked: int = 0
    slices_checked: int = 0
    originals_missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    missing_lines: list[dict] = field(default_factory=list)  # chosen lines without a clip (the manifest's `missing`)
    store_seal: Optional[dict] = None  # the store's chain head when the bundle was made

    @property
    def ok(self) -> bool:
        return not self.problems and not self.missing_lines

    def check_store_seal(self, store: Store) -> None:
        """Add a problem unless the bundle's store seal is in `store`'s chain."""
        if self.store_seal is None:
            self.problems.append(f"{MANIFEST}: records no store seal, so it cannot be tied to {store.path}")
            return
        problem = store.seal_head_problem(self.store_seal)
        if problem:
            self.problems.append(f"{store.path}: {problem}")

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def _find_original(recording: dict, originals: Optional[Path]) -> Optional[Path]:
    candidates = []
    if originals is not None:
        name = Path(recording["path"]).name
        candidates.append(originals / name)
        candidates.extend(sorted(originals.rglob(name)))
    candidates.append(Path(recording["path"]))
    return next((c for c in candidates if c.is_file()), None)


def verify_bundle(bundle_path: Union[str, os.PathLike], originals: Optional[Union[str, os.PathLike]] = None,
                  tolerance: int = DEFAULT_TOLERANCE) -> BundleReport:
    """Check a bundle (see the module's docstring). Raises BundleError when it is not one."""
    bundle_path = Path(bundle_path)
    report = BundleReport(str(bundle_path))
    originals = Path(originals) if originals is not None else None
    if originals is not None and not originals.is_dir():
        raise BundleError(f"{originals}: not a folder of original recordings")
    try:
        archive = zipfile.ZipFile(bundle_path)
    except (OSError, zipfile.BadZipFile) as error:
        raise BundleError(f"{bundle_path}: not an evidence bundle (ZIP): {error}") from None
    with archive:
        names = set(archive.namelist())
        if MANIFEST not in names:
            raise BundleError(f"{bundle_path}: not an evidence bundle (no {MANIFEST})")
        manifest_bytes = archive.read(MANIFEST)
        if MANIFEST_HASH not in names:
            report.problems.append(f"{MANIFEST_HASH}: missing, so {MANIFEST} cannot be checked")
        elif archive.read(MANIFEST_HASH).decode("utf-8", "replace").split()[:1] != [_sha256(manifest_bytes)]:
            report.problems.append(f"{MANIFEST}: changed (its SHA-256 does not match {MANIFEST_HASH})")
        try:
            manifest = json.loads(manifest_bytes)
            entries = manifest["lines"]
            assert manifest.get("format") == BUNDLE_FORMAT and isinstance(entries, list)
        except (ValueError, KeyError, TypeError, AssertionError):
            raise BundleError(f"{bundle_path}: {MANIFEST} is not an intercept evidence manifest") from None
        report.lines = len(entries)
        report.store_seal = manifest.get("store_seal")
        report.missing_lines = [m for m in manifest.get("missing") or [] if isinstance(m, dict)]
        listed = {MANIFEST, MANIFEST_HASH}
        original_ok: dict[str, Optional[Path]] = {}
        for entry in entries:
            clip = entry.get("clip") or {}
            name = str(clip.get("file"))
            listed.add(name)
            if name not in names:
                report.problems.append(f"{name}: listed in {MANIFEST} for line {entry.get('line_id')} but not in the bundle")
                continue
            data = archive.read(name)
            report.clips_checked += 1
            if _sha256(data) != clip.get("sha256"):
                report.problems.append(f"{name}: changed (SHA-256 {_sha256(data)[:16]}… is not the manifest's "
                                       f"{str(clip.get('sha256'))[:16]}…)")
                continue
            if originals is None:
                continue
            recording = entry["recording"]
            key = recording["path"]
            if key not in original_ok:
                found = _find_original(recording, originals)
                if found is None:
                    report.originals_missing.append(key)
                elif sha256_file(str(found)) != recording["sha256"]:
                    report.problems.append(f"{found}: the original's SHA-256 is not the manifest's "
                                           f"(changed, or another file of that name)")
                    found = None
                original_ok[key] = found
            found = original_ok[key]
            if found is None:
                continue
            problem = _slice_problem(name, data, found, clip, tolerance)
            report.slices_checked += 1
            if problem:
                report.problems.append(problem)
        for extra in sorted(names - listed):
            if not extra.endswith("/"):
                report.problems.append(f"{extra}: in the bundle but not listed in {MANIFEST}")
    return report


def _slice_problem(name: str, data: bytes, original: Path, clip: dict, tolerance: int) -> Optional[str]:
    """None when the clip is the stated slice of `original`, else why not."""
    try:
        samples, rate = wav_samples(data)
    except (ValueError, EOFError) as error:
        return f"{name}: not a 16-bit mono WAV ({error})"
    start, end = float(clip["start_s"]), float(clip["end_s"])
    try:
        again = extract_clip(str(original), start, end, 0.0, sample_rate=rate)
    except AudioError as error:
        return f"{name}: cannot cut [{start:.3f}, {end:.3f}] s from {original}: {error}"
    expected, _ = wav_samples(again)
    if abs(len(expected) - len(samples)) > 1:
        return (f"{name}: not the stated slice [{start:.3f}, {end:.3f}] s of {original.name} "
                f"({len(samples)} samples, the original gives {len(expected)})")
    count = min(len(expected), len(samples))
    difference = int(np.max(np.abs(expected[:count].astype(np.int32) - samples[:count].astype(np.int32)))) if count else 0
    if difference > tolerance:
        return (f"{name}: not the stated slice [{start:.3f}, {end:.3f}] s of {original.name} "
                f"(samples differ by up to {difference}, tolerance {tolerance})")
    return None
