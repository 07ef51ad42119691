"""The ``intercept`` command: a thin click layer over the library."""
from __future__ import annotations

import json
import sys
from dataclasses import asdict, replace
from pathlib import Path

import click

from . import __version__


from .cli_options import apply_settings, config_option, fail, lexicon_option, settings_options, store_argument

def _require_voices() -> None:
    """One line and exit 2 when the optional voices extra is missing, before any work."""
    from .voices import VoicesUnavailable, require

    try:
        require()
    except VoicesUnavailable as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)




def _warn(message: str) -> None:
    click.echo(message, err=True)


def _open_store(db_path: Path, mode: str):
    """The store at db_path opened in `mode` (intercept.store: read, write); a file that is
    not a store of this intercept's schema is one line and exit 2, untouched."""
    from .store import Store, StoreError

    try:
        return Store(db_path, mode)
    except StoreError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="intercept")
def cli():
    """Transcribe, translate and flag push-to-talk radio traffic for human review.

    \b
    A typical day:
      intercept run traffic.db recordings/          # transcribe a folder of recordings
      intercept review traffic.db                    # reviewers open flagged lines in Datasette
      intercept match "امشب پرنده یا روباه"            # try a lexicon edit without audio

    Recordings are split into transmissions, transcribed from Farsi with Whisper, normalised,
    translated to English and checked against the coded-language lexicon. Everything lands in
    one SQLite file (STORE, the first argument of every command that reads or writes one);
    source recordings are opened read-only and never modified.

    \b
    Exit status, for every command:
      0  done
      1  some of the work failed, or a check found a problem (each named on stderr);
         what could be done was done
      2  bad input or options (a missing or foreign store, a bad lexicon, model or
         config file): nothing was processed or changed
    """


RUN_SETTINGS = ("--model", "--engine", "--language", "--translator", "--mt-model", "--mt-fallback", "--mt-backend",
                "--mt-device", "--lexicon", "--segment", "--clean/--no-clean", "--beam-size", "--compute-type",
                "--device", "--threads")
RUN_SETTINGS_AFTER_CONFIG = ("--recorded-at", "--force")
RUN_SETTINGS_CHECKS = ("--acoustic-check/--no-acoustic-check", "--acoustic-loose", "--voices", "--voice-threshold")


@cli.command()
@click.argument("store_and_paths", nargs=-1, required=True, metavar="STORE PATHS...",
                type=click.Path(path_type=Path))
@click.option("--db", "db_option", type=click.Path(dir_okay=False, path_type=Path), hidden=True,
              help="The older spelling of STORE (then every argument is a PATH).")
@settings_options(*RUN_SETTINGS, default_help={"--mt-device": "the same as --device"})
@config_option
@settings_options(*RUN_SETTINGS_AFTER_CONFIG)
@click.option("--ray", "ray_address", is_flag=False, flag_value="local", default=None, metavar="[ADDRESS]",
              help="Process on Ray workers; this command alone writes STORE. No ADDRESS: a private Ray on "
                   "this machine; 'auto': the cluster this machine belongs to; or HEAD:6379 / "
                   "ray://HEAD:10001. Put --ray after the PATHS (or write --ray local).")
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Ray workers, each loading its own model (with --ray).  [default: as many as free CPUs/GPUs allow]")
@click.option("--cpus-per-worker", type=click.FloatRange(0, min_open=True), default=None,
              help="CPUs (and recognition threads) per Ray worker.  [default: 1]")
@click.option("--gpus-per-worker", type=click.FloatRange(0), default=None,
              help="GPUs per Ray worker; use with --device cuda.  [default: 0]")
@settings_options(*RUN_SETTINGS_CHECKS)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON instead of text.")
@click.option("--no-progress", is_flag=True, help="No progress bars (they go to stderr).")
def run(store_and_paths, db_option, config_path, ray_address, workers, cpus_per_worker, gpus_per_worker, as_json,
        no_progress, **settings):
    """Transcribe, translate and flag every recording under PATHS into STORE.

    STORE is the SQLite file written (created if missing; re-runs add to it). PATHS are files
    or folders. Folders are walked for audio files (wav, mp3, ogg, opus, flac, m4a, amr, ...); a
    file named directly is always tried. Anything ffmpeg can read works. Recordings shorter
    than 25 s (scanner recorders write one file per transmission) are recognised several at a
    time, sharing Whisper's windows; each is still stored on its own ([pool] in a --config
    file sets this). Options override the --config file, which overrides the defaults; the
    settings are kept with the run, and `intercept flag` and `intercept translate` reuse them.

    A recording whose content (SHA-256) is already stored is skipped unless --force. A file
    that cannot be read or decoded is stored as failed with the reason, and the batch goes
    on.

    \b
      intercept run traffic.db recordings/
      intercept run traffic.db night.wav --acoustic-loose 0.5

    \b
    Exit status:
      0  every recording was processed or skipped
      1  at least one recording failed (listed in the summary and in the store)
      2  bad options, lexicon or model: nothing was processed
    """
    from .distributed import DistributedError
    from .lexicon import LexiconError
    from .models import ModelError
    from .store import StoreError
    from .translate import MTModelError

    db_path, paths = _store_and_paths(store_and_paths, db_option)
    options = _run_options(config_path, settings)
    ray_options = _ray_options(ray_address, workers, cpus_per_worker, gpus_per_worker)
    try:
        summary = _run_batch(paths, db_path, options, ray_options, progress=not no_progress)
    except (ModelError, LexiconError, StoreError, MTModelError, DistributedError, ValueError) as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_summary(summary, db_path)
    sys.exit(1 if summary.failed else 0)


def _store_and_paths(arguments: tuple[Path, ...], db_option):
    """(STORE, PATHS) from `run`'s arguments: the first is the store unless --db names it."""
    if db_option is not None:
        return db_option, list(arguments)
    store, *paths = arguments
    from .pipeline import AUDIO_EXTENSIONS

    if store.is_dir() or store.suffix.lower() in AUDIO_EXTENSIONS:
        raise click.UsageError(f"'{store}' is a recording or a folder, not a store: STORE comes first "
                               f"(intercept run traffic.db {store} ...)")
    if not paths:
        raise click.UsageError("Missing argument 'PATHS...': the recordings to process, after STORE.")
    return store, paths


def _run_options(config_path, settings: dict):
    """RunOptions: the defaults, then the --config file, then the options given."""
    from .config import ConfigError, RunOptions, load_config

    try:
        options = load_config(config_path) if config_path else RunOptions()
    except ConfigError as exc:
        raise click.UsageError(str(exc))
    apply_settings(options, settings)
    if options.voices:
        _require_voices()
    return options


def _transcribe_options(config_path, settings: dict):
    """The decoding settings a run with this --config file and these options would use (the
    file's other sections are not this command's business)."""
    from .config import ConfigError, RunOptions, load_config

    try:
        options = load_config(config_path) if config_path else RunOptions()
    except ConfigError as exc:
        raise click.UsageError(str(exc))
    return apply_settings(options, settings).transcribe


def _ray_options(address, workers, cpus_per_worker, gpus_per_worker):
    """RayOptions with --ray, else None (and no Ray option may be given)."""
    if address is None:
        if any(v is not None for v in (workers, cpus_per_worker, gpus_per_worker)):
            raise click.UsageError("--workers, --cpus-per-worker and --gpus-per-worker need --ray")
        return None
    from .distributed import RayOptions

    ray_options = RayOptions(address=None if address == "local" else address, workers=workers)
    if cpus_per_worker is not None:
        ray_options.cpus_per_worker = cpus_per_worker
    if gpus_per_worker is not None:
        ray_options.gpus_per_worker = gpus_per_worker
    return ray_options


def _run_batch(paths, db_path, options, ray_options, progress: bool):
    if ray_options is None:
        from .pipeline import run_batch

        return run_batch(paths, db_path, options, progress=progress, warn=_warn)
    from .distributed import run_batch_ray

    return run_batch_ray(paths, db_path, options, ray_options, progress=progress, warn=_warn)


def _print_summary(summary, db_path: Path) -> None:
    rtf = summary.real_time_factor
    click.echo(
        f"\n{summary.files} files: {summary.done} done, {summary.skipped} skipped "
        f"(already stored), {summary.failed} failed"
    )
    click.echo(
        f"{summary.transmissions} transmissions, {summary.lines} lines, {summary.audio_hours:.3f} h of audio"
    )
    click.echo(f"{summary.flagged_lines} flagged lines, {summary.suspect_lines} suspect lines")
    click.echo(
        f"wall time {summary.wall_s:.1f} s"
        + (f", real-time factor {rtf:.2f} ({1 / rtf:.1f}x real time)" if rtf else "")
        + f"; models loaded once in {summary.load_s:.1f} s before that"
    )
    if getattr(summary, "workers", 0):
        click.echo(f"{summary.workers} Ray workers; {summary.worker_deaths} worker deaths, "
                   f"{summary.retries} recordings retried")
    if getattr(summary, "voices", None):
        v = summary.voices
        click.echo(f"voices: {v['embedded']} transmissions embedded ({v['skipped_short']} too short, "
                   f"{v['skipped_no_speech']} too little speech: no voice); {v['joined']} joined known voices, "
                   f"{v['new_voices']} new voices; {v['voices']} voices in the store")
    for path, reason in summary.notes:
        click.echo(f"skipped {path}: {reason}")
    for path, reason in summary.failures:
        click.echo(f"FAILED {path}: {reason}", err=True)
    click.echo(f"\nReview the flagged lines:  {_program()} review {db_path}")


def _program() -> str:
    """How to call intercept again from this shell: `intercept` when that is on PATH,
    else the path it was run by (.venv/bin/intercept after scripts/run-samples.sh)."""
    import shutil

    invoked = Path(sys.argv[0])
    if invoked.name != "intercept":
        return "intercept"
    found = shutil.which("intercept")
    if found and Path(found).resolve() == invoked.resolve():
        return "intercept"
    return str(invoked)


@cli.command()
@store_argument()
@click.option("--port", default=8001, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to listen on; keep 127.0.0.1 unless reviewers connect from elsewhere. "
                   "Another interface needs --accounts (or --public-read).")
@click.option("--accounts", "accounts_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="YAML or JSON file of reviewer: password-hash (make hashes with `datasette hash-password`), "
                   "or reviewer: {password_hash: ..., role: lead} for a lead, who decides disputed flags. "
                   "With accounts, reading needs a login too.")
@click.option("--public-read", is_flag=True,
              help="Let anyone who reaches the server read lines, audio and bundles without a login "
                   "(a deliberate public review); recording verdicts still needs one.")
@click.option("--session-hours", default=12.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="How long a login lasts; logging out ends it at once.")
@click.option("--https", "behind_https", is_flag=True,
              help="The server is reached over TLS (a proxy in front terminates https): mark cookies Secure.")
@click.option("--bundle-max-lines", default=100, show_default=True, type=click.IntRange(min=1),
              help="Most lines one evidence-bundle download may ask for.")
@click.option("--context", "context_s", default=2.0, show_default=True, type=click.FloatRange(0, 30),
              help="Seconds of audio either side of a line offered by its '±' link.")
@click.option("--open", "open_browser", is_flag=True, help="Open the start page in a web browser.")
@lexicon_option
@click.option("--mt-model", default=None, metavar="PATH|ID",
              help="MT model (transformers) for the English of a corrected line when the reviewer types none.  "
                   "[default: none: the old English is kept, marked as made from the uncorrected text]")
def review(db_path, port, host, accounts_path, public_read, session_hours, behind_https, bundle_max_lines,
           context_s, open_browser, lexicons, mt_model):
    """Open STORE in Datasette for review.

    The start page lists flagged lines awaiting review, Farsi right to left, each with a
    player for exactly its stretch of the original recording. With reviewer accounts every
    page, clip, export and bundle needs a login (unless --public-read); only logged-in
    reviewers record verdicts. Without accounts anyone who reaches the server reads and
    nobody records verdicts, so it listens on 127.0.0.1 only (another --host is refused
    unless --public-read). Logins last --session-hours; logout ends them on the server, as
    does a restart. Failed logins are slowed per account and per address (docs/review.md).

    \b
    Reviewer accounts come from --accounts and from environment variables
    INTERCEPT_REVIEWER_<NAME>=<password hash>. Stop with Ctrl+C.

    Logged-in reviewers also correct lines' text (key e; docs/review.md, "Corrections"): the
    corrected line is flagged again by --lexicon, and its English is the reviewer's, else
    --mt-model's translation of the corrected Farsi, else the old English marked unreliable.

    STORE is only read, except for the verdicts and corrections reviewers record. A store that cannot be
    written (read-only file or directory) is served read-only. A STORE that is not an intercept
    store, or is of another schema version, is refused with one line (exit 2).
    """
    import os

    from . import review as review_ui

    try:
        read_only = review_ui.check_store(db_path)
        if read_only:
            click.echo(f"{db_path}: {read_only}: the review is read-only (no verdicts can be recorded).", err=True)
        accounts = review_ui.accounts_from_environ(os.environ)
        leads = frozenset()
        if accounts_path:
            accounts.update(review_ui.load_accounts(accounts_path))
            leads = review_ui.load_leads(accounts_path)
        options = review_ui.ReviewOptions(
            accounts=accounts, context_s=context_s, secret=os.environ.get("DATASETTE_SECRET"),
            public_read=public_read, session_hours=session_hours, https=behind_https,
            bundle_max_lines=bundle_max_lines,
            # what reviewers' corrections are derived with
            lexicons=[str(p) for p in lexicons], translator="transformers" if mt_model else None,
            mt_model=mt_model, leads=leads)
        review_ui.check_binding(host, options)
        # Who can reach what, said once at start (stdout: it is what the command does).
        where = f"http://{host}:{port}/"
        if accounts and not public_read:
            doors = f"{where}: reviewers log in to read and to record verdicts; logins last {session_hours:g} h."
        elif accounts:
            doors = f"{where}: --public-read: anyone who reaches it reads; logged-in reviewers record verdicts."
        elif public_read:
            doors = f"{where}: no reviewer accounts, --public-read: anyone who reaches it reads; nobody records verdicts."
        else:
            doors = (f"{where}: no reviewer accounts, so listening on {host} only: anyone on this machine reads "
                     "every line and its audio; nobody records verdicts (--accounts: reviewers log in).")
        click.echo(doors)
        if accounts and not behind_https and not review_ui.is_loopback(host):
            click.echo(f"Warning: {host} over plain http: passwords and session cookies cross the network "
                       "unencrypted; put a proxy that terminates https in front and give --https.", err=True)
        review_ui.serve(str(db_path), port=port, host=host, open_browser=open_browser, options=options)
    except review_ui.ReviewError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


@cli.command()
@click.argument("texts", nargs=-1)
@lexicon_option
@click.option("--english", default="", help="English translation to match English glosses against.")
@click.option("--raw", is_flag=True, help="Do not normalise the Farsi text first (it must already be normalised).")
def match(texts, lexicons, english, raw):
    """Print the lexicon's flags for TEXTS as JSON, one object per text.

    Each flag shows its prior (how likely the form means the concept at all) and the reason
    when it is low, e.g. "sound_alike: گفتار" (lexicons/README.md says how to override it).
    With no TEXTS, reads one text per line from standard input. Use it to try a lexicon
    edit without audio:

    \b
      intercept match "امشب برویم ببینیم پرنده است یا روباه"
      cat lines.txt | intercept match --lexicon my-lexicon.yaml
    """
    from .components import load_lexicon
    from .lexicon import LexiconError
    from .text import PersianNormalizer

    # One normaliser for the lexicon and the texts: hazm's takes seconds to build.
    normalizer = PersianNormalizer()
    try:
        lexicon = load_lexicon(lexicons, normalizer)
    except LexiconError as exc:
        raise click.UsageError(str(exc))
    source = texts or (line.rstrip("\n") for line in sys.stdin)
    for text in source:
        if not text.strip():
            continue
        normalised = text if raw else normalizer.normalize(text)
        flags = lexicon.match(normalised, english)
        click.echo(
            json.dumps(
                {"text": text, "text_fa": normalised, "lexicon_version": lexicon.version,
                 "flags": [asdict(f) for f in flags]},
                ensure_ascii=False,
            )
        )


def _translate_defaults():
    """`intercept translate`'s own defaults: a text MT model that fails loudly, on the CPU."""
    from .config import RunOptions

    options = RunOptions(translator="transformers", mt_fallback="error")
    options.mt.device = "cpu"
    return options


@cli.command()
@store_argument(db_alias=True)
@settings_options("--translator", "--mt-model", "--mt-fallback", "--mt-backend", "--mt-batch-size", "--mt-threads",
                  "--mt-device", defaults=_translate_defaults())
@settings_options("--model", default_help={"--model": "base"},
                  help={"--model": "Whisper model for --translator whisper (or a whisper fallback)."})
@click.option("--recording", "recording_id", type=int, help="Only this recording (recordings.id).")
@settings_options("--clean/--no-clean", "--lexicon", default_help={"--clean/--no-clean": "as the run"},
                  help={"--clean/--no-clean": "Radio clean-up before Whisper's translate task (as `run --clean`)."})
def translate(db_path, recording_id, **settings):
    """Translate the stored lines of STORE again, without re-transcribing.

    Each line records the translator and the model id with its version. What depends on the
    English is derived again with it, each recording as the run that stored it was set (its
    guards, acoustic check and --acoustic-loose): the suspect marks and the flags (by
    --lexicon). Use it when a better MT model becomes available:

    \b
      intercept translate traffic.db --mt-model /models/m2m100_418M
    """
    from .components import build_translator, load_engine, load_lexicon
    from .lexicon import LexiconError
    from .models import ModelError
    from .store import WRITE
    from .text import PersianNormalizer
    from .retranslate import retranslate
    from .translate import MTModelError

    clean = settings.pop("clean_radio")  # None: as each recording's run was
    options = apply_settings(_translate_defaults(), settings)
    # The store first: a file that cannot be written is refused before a model loads.
    _open_store(db_path, WRITE).close()
    normalizer = PersianNormalizer()
    try:
        lexicon = load_lexicon(options.lexicons, normalizer)
    except LexiconError as exc:
        raise click.UsageError(str(exc))
    needs_whisper = options.translator == "whisper" or (
        options.translator == "transformers" and options.mt_fallback == "whisper")
    try:
        engine = None
        if needs_whisper:  # Whisper's translate task: faster-whisper, with the default decoding options
            options.engine = "faster-whisper"
            engine = load_engine(options)[0]
        chosen = build_translator(options, engine, warn=lambda message: click.echo(message, err=True))
    except (ModelError, MTModelError, ValueError) as exc:
        fail(str(exc))
    with _open_store(db_path, WRITE) as store:
        count = retranslate(store, chosen, recording_id, clean_radio=clean, lexicon=lexicon, normalizer=normalizer)
    click.echo(f"{count} lines translated by {chosen.name} ({chosen.model}); suspect marks and flags derived again")


@cli.command("flag")
@store_argument(db_alias=True)
@lexicon_option
@click.option("--fuzzy-threshold", type=click.FloatRange(0, 1, min_open=True),
              help="Similarity a lone fuzzy hit needs (overrides the lexicon's fuzzy_threshold).")
@click.option("--no-fuzzy", is_flag=True, help="Exact, morphological, pattern and English matches only.")
@click.option("--recording", "recording_id", type=int, help="Re-flag only this recording (recordings.id).")
@settings_options("--acoustic-loose", default_help={"--acoustic-loose": "as the run"})
@click.option("--json", "as_json", is_flag=True, help="Print what changed as JSON.")
def flag(db_path, lexicons, fuzzy_threshold, no_fuzzy, recording_id, acoustic_loose, as_json):
    """Re-flag stored lines with the current lexicon, without re-transcribing.

    Use it after editing a lexicon. The post-recognition step runs again without translating:
    the Farsi is normalised again from the raw text, the suspect marks and the flags follow it,
    each recording as the run that stored it was set (its [guards] settings, acoustic check
    and --acoustic-loose, unless given here).
    Flags are scored again from the recogniser evidence stored with each line (words, N-best),
    without re-recognising; lines stored without it are counted and scored with it unknown.
    Each recording's lines and flags are replaced in one transaction; flags carry the new
    lexicon version (a content hash), under which the lexicon's terms are stored. Reviewer
    verdicts are kept as they are.

    \b
      intercept match "..." --lexicon lexicons/        # try the edit on text first
      intercept flag traffic.db                         # then apply it to the store
    """
    from .components import load_lexicon
    from .lexicon import LexiconError, MatchOptions
    from .reflag import reflag
    from .store import WRITE
    from .text import PersianNormalizer

    _open_store(db_path, WRITE).close()
    normalizer = PersianNormalizer()
    try:
        lexicon = load_lexicon(lexicons, normalizer,
                               options=MatchOptions(fuzzy=not no_fuzzy, fuzzy_threshold=fuzzy_threshold))
    except LexiconError as exc:
        raise click.UsageError(str(exc))
    with _open_store(db_path, WRITE) as store:
        result = reflag(store, lexicon, normalizer, recording_id, acoustic_loose=acoustic_loose)
    data = asdict(result)
    data["by_kind"] = dict(result.by_kind)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    click.echo(
        f"lexicon {result.lexicon_version}: {result.recordings} recordings, {result.lines} lines, "
        f"flags {result.flags_before} -> {result.flags_after}, {result.flagged_lines} flagged lines"
    )
    if result.by_kind:
        click.echo("by kind: " + ", ".join(f"{k} {v}" for k, v in sorted(result.by_kind.items())))
    if result.renormalised_lines:
        click.echo(f"{result.renormalised_lines} lines had been normalised by an older normaliser: normalised again")
    if result.suspect_changed:
        click.echo(f"{result.suspect_changed} lines' suspect marks changed")

    if result.lines_without_evidence:
        click.echo(f"{result.lines_without_evidence} lines have no stored recogniser evidence (words, N-best): their "
                   f"flags score their form's prior; re-recognise them (intercept run --force) to get it")
    if result.fuzzy_unchecked:
        click.echo(f"{result.fuzzy_unchecked} fuzzy flags have no acoustic check (their line's text changed, or it "
                   f"was never checked): scored with it unknown; re-recognise (intercept run --force) to check them")

@cli.command("voices")
@store_argument()
@settings_options("--voice-threshold")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def voices_command(db_path, voice_threshold, as_json):
    """Group the transmissions of STORE into voices (same speaker across recordings).

    Transmissions without a voice embedding are embedded from their original recording
    (re-decoded from the path the store holds); a recording that cannot be read is named on
    one line and the others go on. Then every embedded transmission without a voice joins the
    most similar voice, or forms a new voice. Voices keep their numbers; names, merges and
    splits made by reviewers are never undone. Transmissions under 1 s, or with under 0.5 s of
    speech, get no voice. Needs the extra 'voices' (docs/voices.md).

    \b
    Exit status: 0 done, 1 some recordings could not be read, 2 bad store or extra missing.
    """
    _require_voices()
    from .store import WRITE, Store, StoreError
    from .voices import DEFAULT_THRESHOLD, voices_for_store

    try:
        # WRITE, as flag and translate: an older store is refused (run `intercept migrate`), never migrated here.
        with Store(db_path, WRITE) as store:
            summary = voices_for_store(store, DEFAULT_THRESHOLD if voice_threshold is None else voice_threshold)
    except StoreError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(summary.to_dict(), ensure_ascii=False, indent=2))
    else:
        click.echo(f"{summary.embedded} transmissions embedded ({summary.skipped_short} too short, "
                   f"{summary.skipped_no_speech} too little speech: no voice); {summary.joined} joined known "
                   f"voices, {summary.in_new_voices} formed {summary.new_voices} new voices; "
                   f"{summary.voices} voices in the store")
        for path, reason in summary.failures:
            click.echo(f"FAILED {path}: {reason}", err=True)
    sys.exit(1 if summary.failures else 0)


@cli.command()
@store_argument(exists=False, required=False)
@click.option("--bundle", "bundle_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Check an evidence bundle (intercept export --format bundle); with STORE too, also that "
                   "the bundle's store seal is in STORE's chain.")
@click.option("--originals", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="With --bundle: folder holding the original recordings (found by file name); each "
                   "clip is then cut again from its original and compared sample by sample.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
def verify(db_path, bundle_path, originals, as_json):
    """Check the chain of custody of STORE, or of an evidence bundle (--bundle).

    Re-hashes every original recording the store holds lines for, at every path its content
    was seen under, against the SHA-256 stored when it was processed, and checks the store's
    own integrity. Recomputes every recording's seal (its rows as intercept last wrote them,
    chained like a transparency log) and names each recording, transmission, line, flag or
    verdict changed, removed or added from outside intercept, and any seal edited or removed.
    Originals are only read. What this proves and what it cannot: docs/recovery.md.

    With --bundle: re-hashes every clip of the bundle against its manifest and the manifest
    against its hash file, lists the lines whose clips could not be cut, and shows the store
    seal the bundle was made at; with --originals, also re-hashes each original and cuts every
    clip again from it, comparing the samples. Given STORE too, checks that the bundle's seal is
    in STORE's chain. Each problem names the file.

    \b
      intercept verify --bundle evidence.zip --originals /recordings
      intercept verify traffic.db --bundle evidence.zip

    \b
    Exit status:
      0  every original is present and unchanged, and the store is whole and matches its
         seals (the bundle intact, every line's clip in it)
      1  some original is missing, changed or unreadable, the store has a problem, or a row
         or seal was changed from outside (a clip or the manifest changed, a clip is not its
         stated slice, a line's clip is missing, the bundle's seal is not in STORE's chain)
      2  STORE is missing, is not an intercept store (not SQLite, truncated, another database),
         or is a store of another schema version (older: run `intercept migrate STORE`);
         with --bundle: the bundle is not an evidence bundle

    STORE is opened read-only and left byte for byte as it was.
    """
    if bundle_path is not None:
        _verify_bundle(bundle_path, originals, as_json, db_path)
    if db_path is None:
        raise click.UsageError("give a STORE, or --bundle FILE.zip")
    from .pipeline import verify_originals
    from .store import StoreError

    try:
        report = verify_originals(db_path)
    except StoreError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        for check in report.originals:
            if check.status != "ok":
                click.echo(f"{check.status.upper()} {check.path}: {check.reason}")
        for problem in report.store_problems:
            click.echo(f"STORE {problem}")
        for problem in report.seal_problems:
            click.echo(f"SEAL {problem}")
        counts = report.counts()
        head = report.chain_head
        click.echo(", ".join(f"{n} {status}" for status, n in counts.items())
                   + f"; store {'whole' if not report.store_problems else 'has problems'}"
                   + (f"; {len(report.seal_problems)} rows or seals changed from outside" if report.seal_problems
                      else "; every row matches its seal")
                   + (f" (chain head: seal {head['id']} {head['chain']})" if head else ""))
    sys.exit(0 if report.ok else 1)


def _verify_bundle(bundle_path, originals, as_json, db_path=None):
    from .bundle import BundleError, verify_bundle
    from .store import READ

    try:
        report = verify_bundle(bundle_path, originals)
    except BundleError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    if db_path is not None:
        with _open_store(db_path, READ) as store:
            report.check_store_seal(store)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False, indent=2))
    else:
        for problem in report.problems:
            click.echo(f"BAD {problem}")
        for missing in report.originals_missing:
            click.echo(f"MISSING original {missing} (its clips' slices not checked)")
        for line in report.missing_lines:
            click.echo(f"MISSING line {line['line_id']}: no clip ({line['reason']})")
        head = report.store_seal
        click.echo(f"made at store seal {head['id']} {head['chain']}" if head
                   else "no store seal recorded (a bundle from before sealed stores)")
        click.echo(f"{report.lines} lines, {report.clips_checked} clip hashes checked, "
                   f"{report.slices_checked} clips compared with their originals; "
                   f"{'bundle intact' if report.ok else f'{len(report.problems)} problems'}"
                   + (f"; {len(report.missing_lines)} lines chosen have no clip" if report.missing_lines else ""))
    sys.exit(0 if report.ok else 1)


@cli.command()
@store_argument(exists=False)
def migrate(db_path):
    """Bring STORE, made by an older intercept, to this intercept's schema.

    The store as it was is first copied whole (SQLite's backup API, its WAL included) to
    STORE.bak-N, N being its old schema version; then the migrations run. Only this command
    and `intercept run` migrate a store; the others refuse an older store and say to run this.

    \b
    Exit status:
      0  STORE was migrated, or was current already
      2  STORE is not an intercept store, is newer, cannot be written, or STORE.bak-N exists
    """
    from .store import SCHEMA_VERSION, StoreError, migrate_store

    try:
        backup = migrate_store(db_path, warn=_warn)
    except StoreError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    if backup is None:
        click.echo(f"{db_path}: schema version {SCHEMA_VERSION} already; nothing to migrate")


@cli.group()
def models():
    """Where recognition weights come from, and checks on them."""


@models.command("path")
@click.argument("name", default="base")
def models_path(name):
    """Print the local directory of model NAME (assembling the embedded base model if needed)."""
    from .models import ModelError, resolve_model

    try:
        click.echo(resolve_model(name, allow_download=False).path)
    except ModelError as exc:
        fail(str(exc))


@models.command("verify")
def models_verify():
    """Re-hash the embedded Whisper base model against its known SHA-256."""
    from .models import EMBEDDED_SHA256, ModelError, embedded_model_dir

    try:
        path = embedded_model_dir(verify=True)
    except ModelError as exc:
        fail(str(exc))
    click.echo(f"ok {path / 'model.bin'} sha256 {EMBEDDED_SHA256}")


@models.command("convert")
@click.argument("model", default="base", metavar="[MODEL]")
@click.option("--to", "target", required=True, type=click.Choice(["openai-whisper", "transformers"]),
              help="Format to build.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Folder to write into.")
def models_convert(model, target, out_dir):
    """Rebuild an openai-whisper .pt checkpoint or a transformers directory from a
    CTranslate2 Whisper MODEL ('base' or a directory), offline.

    For air-gapped machines: the converted weights are the same numbers, so every engine
    gives the same text on the same audio.

    \b
      intercept models convert --to openai-whisper --out ~/models
      intercept run rec/ --db s.db --engine openai-whisper --model ~/models/whisper-base-ct2.pt
    """
    from .convert import convert_ct2
    from .models import ModelError, resolve_model

    try:
        click.echo(convert_ct2(resolve_model(model, allow_download=False).path, out_dir, to=target))
    except ModelError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


@cli.command()
@store_argument()
@click.option("--format", "fmt", type=click.Choice(["srt", "vtt", "csv", "jsonl", "bundle", "corpus"]), default="csv",
              show_default=True,
              help="srt/vtt: subtitles for one recording; csv/jsonl: one row per line with its flags; "
                   "bundle: a ZIP of evidence (each line's audio cut from the original, and a manifest); "
                   "corpus: a folder of the lines reviewers corrected (clips + metadata.tsv) for intercept adapt.")
@click.option("--flagged-only", is_flag=True,
              help="Exactly the review queue: lines with a flag scored at or above the default threshold "
                   "(intercept.scoring.DEFAULT_THRESHOLD), each with those flags.")
@click.option("--all-flags", is_flag=True,
              help="With --flagged-only: also the flags (and lines) the threshold hides from the queue.")
@click.option("--confirmed-only", is_flag=True, help="Only lines whose latest verdict is 'confirmed'.")
@click.option("--lead-in", "lead_in_s", type=click.FloatRange(0, 30), default=2.0, show_default=True,
              help="bundle: seconds of audio kept either side of each line.")
@click.option("--recording", "recording_id", type=int,
              help="Only this recording (recordings.id); needed for srt/vtt when the store holds several.")
@click.option("--bom", is_flag=True,
              help="csv/srt/vtt: start the file with a UTF-8 byte order mark, so that spreadsheets "
                   "(Excel) read the Farsi as UTF-8 rather than a local code page.")
@click.option("-o", "--output", type=click.Path(path_type=Path),
              help="File to write (a folder for --format corpus).  [default: standard output]")
def export(db_path, fmt, flagged_only, all_flags, confirmed_only, lead_in_s, recording_id, bom, output):
    """Export the lines of STORE as subtitles (srt, vtt) or a table (csv, jsonl).

    Times are seconds in the original recording. CSV and JSONL carry every line's Farsi,
    English, recognition scores, suspect marks and flags (each with its score, the chance a
    listener agrees, and the evidence behind it). Without --flagged-only every line and every
    flag goes out.

    CSV is RFC 4180 (CRLF, fields with commas, quotes or line breaks quoted), and a text cell
    that a spreadsheet would run as a formula (starting with = + - @, tab, CR or NUL) or that
    starts with ' gets a leading ': remove one leading ' to get the stored text. Subtitles
    drop control characters, fold line breaks into spaces, and SRT writes "-->" in text as
    "→" (U+2192). JSON Lines is exact. Details: docs/review.md, "What an export does to the text".

    \b
      intercept export traffic.db --format jsonl --flagged-only -o queue.jsonl
      intercept export traffic.db --format csv --flagged-only --all-flags --bom -o flagged.csv
      intercept export traffic.db --format srt --recording 3 -o night.srt
      intercept export traffic.db --format corpus -o corrected/   # then: intercept adapt corrected/

    --format bundle writes an evidence bundle (ZIP: clips cut from the originals, a manifest,
    the store's seal). A chosen line whose clip cannot be cut (original missing or changed,
    line past the recording's end) is named and listed as missing in the manifest, and the
    command exits 1: a bundle is never silently short.
    """
    from .export import ExportError, ExportOptions
    from .export import export as write_export
    from .store import READ

    if fmt == "corpus":
        _export_corpus(db_path, output)
        return
    if output is not None and output.is_dir():
        raise click.BadParameter(f"{output} is a folder; --format {fmt} writes a file", param_hint="-o")
    if fmt == "bundle":
        if bom:
            raise click.UsageError("--bom is for csv, srt and vtt; a bundle is a ZIP")
        _export_bundle(db_path, output, flagged_only, confirmed_only, lead_in_s, recording_id)
        return
    with _open_store(db_path, READ) as store:
        try:
            count = write_export(store, output or sys.stdout,
                                 ExportOptions(fmt, flagged_only, recording_id, all_flags=all_flags,
                                               confirmed_only=confirmed_only, bom=bom))
        except ExportError as exc:
            fail(str(exc))
    if output:
        click.echo(f"{count} lines written to {output}", err=True)


def _export_corpus(db_path, output):
    from .corpus import write_corpus
    from .export import ExportError
    from .store import READ

    if output is None:
        raise click.UsageError("--format corpus writes a folder of clips and metadata.tsv: give -o DIR")
    with _open_store(db_path, READ) as store:
        try:
            result = write_corpus(store, output, warn=lambda message: click.echo(message, err=True))
        except ExportError as exc:
            fail(str(exc))
    click.echo(f"{result['lines']} corrected lines ({result['seconds']:.1f} s) written to {output}/metadata.tsv",
               err=True)


def _export_bundle(db_path, output, flagged_only, confirmed_only, lead_in_s, recording_id):
    from .bundle import BundleOptions, write_bundle
    from .export import ExportError
    from .store import READ

    if output is None:
        raise click.UsageError("--format bundle writes a ZIP file: give -o FILE.zip")
    options = BundleOptions(flagged_only=flagged_only, confirmed_only=confirmed_only, recording_id=recording_id,
                            lead_in_s=lead_in_s)
    with _open_store(db_path, READ) as store:
        try:
            result = write_bundle(store, output, options, warn=lambda message: click.echo(message, err=True))
        except ExportError as exc:  # BundleError is one
            fail(str(exc))
    click.echo(f"{result['lines']} lines written to {output}; bundle SHA-256 {result['sha256']}"
               + (f"; store seal {result['store_seal']['id']} {result['store_seal']['chain']}"
                  if result.get("store_seal") else ""), err=True)
    if result["missing"]:
        # Never a silently short bundle: the lines are in the manifest's `missing`, and exit 1.
        click.echo(f"{len(result['missing'])} chosen lines have no clip (listed as missing in the manifest): "
                   + ", ".join(str(m["line_id"]) for m in result["missing"]), err=True)
        sys.exit(1)


@cli.command("correct")
@store_argument()
@click.argument("line_id", type=int)
@click.option("--fa", "text_fa", required=True, metavar="TEXT", help="The line's Farsi as it was said.")
@click.option("--en", "text_en", default=None, metavar="TEXT",
              help="Your English for the line.  [default: the text translator's on the corrected Farsi, else the "
                   "old English, marked as made from the uncorrected text]")
@click.option("--reviewer", required=True, metavar="NAME", help="Who made the correction (kept with the revision).")
@click.option("--note", default=None, metavar="TEXT", help="Why, for the line's history.")
@click.option("--translator", type=click.Choice(["transformers", "none"]), default="none", show_default=True,
              help="Text translator for the English when --en is not given (Whisper's translate task hears the "
                   "audio, not the correction, so it is not offered).")
@settings_options("--mt-model", "--lexicon")
@click.option("--json", "as_json", is_flag=True, help="Print the revision and the line's new flags as JSON.")
def correct(db_path, line_id, text_fa, text_en, reviewer, note, translator, mt_model, lexicons, as_json):
    """Correct a line's text: a new revision of line LINE_ID (lines.id) of STORE.

    The recogniser's text stays as it was; the line's current text becomes yours, and what
    follows from it is derived again (docs/review.md, "Corrections"): the Farsi normalised,
    flagged and scored by --lexicon with no recogniser doubt (your words are certain), the
    line's earlier flags kept but marked superseded and out of the queue, the English yours
    (--en), else the text translator's on your Farsi, else the old one marked as made from the
    uncorrected text. Search and exports then read the corrected text, with the machine's beside
    it. The review desk does the same (key e).

    \b
      intercept correct traffic.db 42 --fa "امشب روباه می‌آید" --reviewer maryam
      intercept correct traffic.db 42 --fa "..." --en "The fox comes tonight" --reviewer maryam

    \b
    Exit status:
      0  the correction is stored
      2  bad input (no such line, empty text, nothing changed, no store): nothing was written
    """
    from .components import build_translator, load_lexicon
    from .config import RunOptions
    from .corrections import CorrectionConflict, Corrector, check_text
    from .lexicon import LexiconError
    from .store import WRITE
    from .text import PersianNormalizer
    from .translate import MTModelError

    def bad(message: str) -> None:
        click.echo(f"Error: {db_path}: {message}", err=True)
        sys.exit(2)

    try:
        check_text(text_fa, text_en, reviewer)
    except ValueError as exc:
        bad(str(exc))
    # The store first: a file that cannot be written is refused before the lexicon loads.
    _open_store(db_path, WRITE).close()
    normalizer = PersianNormalizer()
    try:
        lexicon = load_lexicon(lexicons, normalizer)
    except LexiconError as exc:
        raise click.UsageError(str(exc))
    chosen = None
    if translator == "transformers" and text_en is None:
        try:
            chosen = build_translator(RunOptions(translator="transformers", mt_model=mt_model, mt_fallback="error"))
        except MTModelError as exc:
            raise click.UsageError(str(exc))
    # The guards of the run that stored the line mark the corrected text (as in the review desk).
    corrector = Corrector.build(lexicon, normalizer, chosen)
    with _open_store(db_path, WRITE) as store:
        try:
            result = corrector.correct_line(store, line_id, text_fa, text_en, reviewer=reviewer, note=note)
        except (ValueError, CorrectionConflict) as exc:
            bad(str(exc))
    if as_json:
        click.echo(json.dumps(result.as_dict(), ensure_ascii=False, indent=2))
        return
    flags = ", ".join(f"{f.concept} ({f.kind} {f.score:.2f})" for f in result.flags) or "none"
    click.echo(f"line {result.line_id}: revision {result.revision_id} by {result.reviewer}; "
               f"{result.superseded} earlier flags superseded; flags now: {flags}")
    english = {"reviewer": "yours", "corrected_fa": "translated from your Farsi",
               "uncorrected_fa": "the old English, made from the uncorrected text (not reliable)"}[result.en_from]
    click.echo(f"English: {english}: {result.text_en or '(none)'}")


@cli.group()
def lexicon():
    """Lexicon upkeep: forms reviewers proposed, and priors calibrated on the recogniser's
    confusions."""


@lexicon.command("suggestions")
@store_argument()
@click.option("--all", "every", is_flag=True, help="Every suggestion, not only the open ones.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table", show_default=True,
              help="A table to read, or JSON Lines to process.")
def lexicon_suggestions(db_path, every, fmt):
    """List the forms reviewers heard and proposed for the lexicon in STORE.

    A reviewer who flags a line by ear ("mark as coded" on the review desk) may propose the word
    as heard as a new form of a concept. Nothing is applied: the lexicon's editor reads this list
    and adds a form to the lexicon file by hand, then `intercept flag STORE` re-flags.
    The same list is on the review desk at /-/intercept/suggestions.
    """
    import json

    from .store import READ

    with _open_store(db_path, READ) as store:
        rows = store.lexicon_suggestions(None if every else "open")
    for row in rows:
        if fmt == "jsonl":
            click.echo(json.dumps(row, ensure_ascii=False))
        else:
            click.echo(f"{row['concept']}\t{row['form']}\tline {row['line_id']}\t{row['suggested_by']} "
                       f"{row['suggested_at']}\t{row['status']}\t{row.get('note') or ''}")
    if not rows:
        click.echo("No suggestions." if every else "No open suggestions.", err=True)


@cli.command()
@click.argument("corpora", nargs=-1, required=True, metavar="CORPUS...",
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the adapted model (CTranslate2), its model_card.json and checkpoints/.")
@click.option("--epochs", type=click.IntRange(1), default=3, show_default=True, help="Passes over the training windows.")
@click.option("--force", is_flag=True, help="Write the model even when it scores worse than its base on the held-out part.")
@click.option("--train", "train_part", type=click.Choice(["decoder+audio", "decoder", "audio", "encoder"]),
              default="decoder+audio", show_default=True,
              help="decoder+audio: the decoder and the encoder's top --audio-layers layers, the layers below "
                   "computed once (CPU); decoder: the encoder frozen; audio: only the encoder's top "
                   "--audio-layers layers, the decoder frozen (the voices and the channel are learnt, not the "
                   "corpus's sentences); encoder: the whole model (GPU).")
@click.option("--audio-layers", type=click.IntRange(1), default=3, show_default=True,
              help="With --train audio or decoder+audio: how many of the encoder's top layers are trained (Whisper base has 6). "
                   "More learn the channel better and, from few speakers, also their voices; "
                   "docs/adapt.md compares 2, 3 and 4.")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True,
              help="Where to train: cuda needs a CUDA build of torch and a GPU (then --train encoder pays off).")
@click.option("--augment-radio", is_flag=True,
              help="Also train on every window as received through the radio channel (hiss, band limit, "
                   "squelch; intercept/channel.py): one more encoder pass per window, no more training time.")
@click.option("--base", default="base", show_default=True, metavar="base|PATH",
              help="Model to adapt: the embedded Whisper base or a CTranslate2 Whisper directory.")
@click.option("--held-out", "held_out", multiple=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Corpus to score on instead of holding out speakers/recordings of CORPUS (repeatable).")
@click.option("--held-out-fraction", type=click.FloatRange(0.01, 0.9), default=0.15, show_default=True,
              help="Share of clips held out, as whole speakers or recordings.")
@click.option("--learning-rate", type=click.FloatRange(0, min_open=True), default=1e-4, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True, help="Windows per step.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--blend", type=click.FloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="Share of the fine-tuned weights in the written model, the rest the base's (1: as trained). "
                   "A blend keeps more of the base's Persian for traffic unlike the corpora; see docs/adapt.md.")
@click.option("--blend-audio-attention", type=click.FloatRange(0, 1, min_open=True), default=None,
              help="Its own share of the fine-tuned weights for the decoder's attention to the audio (what it "
                   "learnt of these voices and this channel); the rest of the decoder takes --blend.  "
                   "[default: as --blend]")
@click.option("--blend-encoder", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True,
              help="Its own share of the fine-tuned weights for the encoder (what it learnt of how these voices "
                   "and this channel sound): 1 keeps it as trained while --blend holds the decoder's language "
                   "model back.")
def adapt(corpora, out_dir, epochs, force, train_part, audio_layers, device, augment_radio, base, held_out,
          held_out_fraction, learning_rate, batch_size, seed, blend, blend_audio_attention, blend_encoder):
    """Fine-tune Whisper on labelled corpora and write a model that `run --model` uses.

    Each CORPUS is a folder with metadata.tsv (path, duration_s, transcript, and speaker,
    voice or recording columns), as `intercept export STORE --format corpus` writes it.
    Whole speakers or recordings are held out (never single clips, and no sentence in
    both parts); WER and CER on them before and after are printed and kept in
    OUT/model_card.json. A model worse than its base is not written (exit 1) unless --force.
    Ctrl-C leaves the last complete epoch in OUT/checkpoints/. See docs/adapt.md.

    \b
      intercept export traffic.db --format corpus -o corrected/
      intercept adapt corrected/ --out models/ours --augment-radio
      intercept run recordings/ --db traffic.db --model models/ours
    """
    from .adapt import AdaptError, AdaptInterrupted, AdaptOptions, ModelWorseError
    from .adapt import adapt as run_adapt
    from .evaluate import CorpusError
    from .models import ModelError

    options = AdaptOptions(out=out_dir, epochs=epochs, force=force, train=train_part, audio_layers=audio_layers,
                           device=device,
                           augment_radio=augment_radio, base=base, held_out=[str(p) for p in held_out],
                           held_out_fraction=held_out_fraction, learning_rate=learning_rate,
                           batch_size=batch_size, seed=seed, blend=blend,
                           blend_audio_attention=blend_audio_attention, blend_encoder=blend_encoder)
    if device == "cuda":
        from .engines import resolve_device

        try:
            resolve_device("cuda", "transformers", "torch", what="adapt")
        except (RuntimeError, ValueError) as exc:
            fail(str(exc))
    try:
        card = run_adapt([str(c) for c in corpora], options, log=lambda m: click.echo(m, err=True))
    except AdaptInterrupted as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(130)
    except ModelWorseError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except (AdaptError, CorpusError, ModelError) as exc:
        fail(str(exc))
    click.echo(f"model written to {out_dir} (card: {out_dir / 'model_card.json'}): held-out WER "
               f"{card['wer_before']:.3f} -> {card['wer_after']:.3f}, CER {card['cer_before']:.3f} -> "
               f"{card['cer_after']:.3f}", err=True)


@lexicon.command("calibrate")
@click.argument("corpora", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
@lexicon_option
@click.option("--model", default="base", show_default=True, metavar="NAME|PATH",
              help="The recogniser to calibrate for: 'base' (embedded) or a CTranslate2 model folder.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="File to write.  [default: calibration/MODEL-NAME.json beside the (first) lexicon]")
@click.option("--threads", type=click.IntRange(0), default=0, help="CPU threads for the recogniser (0: all cores).")
@config_option
@settings_options("--language", "--beam-size", "--compute-type")
def lexicon_calibrate(corpora, lexicons, model, out_path, threads, config_path, **settings):
    """Count how often the recogniser writes each lexicon form where the speech did not say it,
    and where it did, on CORPORA (folders with metadata.tsv: path, duration_s, transcript), and
    write each form's calibrated prior with its counts.

    The flag score uses these priors for every kind of match (an analyst's `prior:` on a concept
    still wins); a form the recogniser invents, or one of three letters or fewer, then needs
    recogniser evidence or a pattern partner (lexicons/README.md). Run it again after adding a
    form or changing the model: the file is keyed by the model's hash, and `intercept run` uses
    the one made with its model. The priors are the recogniser's with its decoding settings:
    calibrate with the run's (--config, --beam-size ...) when they differ from the defaults.

    \b
      intercept lexicon calibrate ~/speech/dev-a ~/speech/dev-b
      intercept lexicon calibrate ~/speech/dev --model ~/models/adapted --lexicon my.yaml
      intercept lexicon calibrate ~/speech/dev --config run.toml
    """
    from .calibration import CalibrationError, calibrate, model_identity
    from .lexicon.calibration import default_calibration_path
    from .engines import load_engine
    from .evaluate import CorpusError
    from .components import load_lexicon
    from .lexicon import LexiconError
    from .models import ModelError, resolve_model
    from .text import PersianNormalizer

    normalizer = PersianNormalizer()
    try:
        lexicon = load_lexicon(lexicons, normalizer, calibrated=False)
        identity = model_identity(model)
        source = resolve_model(model, allow_download=False)
    except (LexiconError, CalibrationError, ModelError) as exc:
        fail(str(exc))
    given = [(name, settings.get(dest)) for name, dest in (("--language", "transcribe__language"),
                                                          ("--beam-size", "transcribe__beam_size"),
                                                          ("--compute-type", "transcribe__compute_type"))]
    decoding = replace(_transcribe_options(config_path, settings), cpu_threads=threads)
    engine = load_engine("faster-whisper", str(source.path), identity["name"], decoding)
    errors = []

    def heard(n, error):
        if error:
            errors.append(error)
            click.echo(f"skipped {error}", err=True)

    command = "intercept lexicon calibrate " + " ".join(str(c) for c in corpora) + (
        f" --model {model}" if model != "base" else "") + (f" --config {config_path}" if config_path else "") + "".join(
        f" {name} {value}" for name, value in given if value is not None)
    try:
        result = calibrate(corpora, lexicon, engine, identity, normalizer, command=command, on_clip=heard)
    except CorpusError as exc:
        fail(str(exc))
    path = result.save(out_path or default_calibration_path(lexicon.files, identity))
    invented = [c for c in result.forms.values() if c.invented]
    click.echo(f"{result.clips} clips ({result.seconds / 60:.1f} min), {len(result.forms)} (form, kind) written, "
               f"{len(invented)} invented by the recogniser"
               + (f", {len(errors)} clip(s) skipped" if errors else "") + f"; wrote {path}", err=True)


def main():
    cli()


if __name__ == "__main__":
    main()
