"""A run's settings (runs.settings) are reused when its lines are derived again: `intercept
translate` keeps the loose fuzzy flags `run --acoustic-loose` found, `intercept flag` keeps the
run's [guards] settings. Both commands reset them to the defaults before issue 26.

The run is stored as `intercept run` stores it (Store.start_run with RunOptions.to_dict(), each
recording saved under that run), from lines derived by the post-recognition step with a
scripted recogniser, so no model is loaded."""
from __future__ import annotations

import textwrap

import numpy as np
import pytest
from click.testing import CliRunner
from rapidfuzz.distance import Levenshtein

from intercept.acoustic import AcousticCheck, AcousticOptions
from intercept.cli import cli
from intercept.config import RunOptions, load_config
from intercept.derive import PostRecognition
from intercept.lexicon import Lexicon
from intercept.store import CREATE, RecordingFacts, Store
from intercept.text import PersianNormalizer
from intercept.types import Hypothesis, Line, Transmission

LEXICON = """\
concepts:
  - id: bird
    category: animal
    fa: [پرنده]
  - id: depot
    category: place
    fa: [انبار]
"""
RATE = 16000


class HearingEngine:
    """Scores a text by how far it is from what was said in the span (as test_acoustic.py)."""

    name = "hearing"

    def __init__(self, heard: dict[tuple[float, float], str]):
        self.heard = heard

    def score_texts(self, samples, start, end, texts, sample_rate=RATE):
        truth = next(text for (a, b), text in self.heard.items() if start <= a and b <= end)
        return [Hypothesis(text, (-2.0 * Levenshtein.distance(text, truth) - 10.0) / len(text), len(text))
                if text else None for text in texts]


@pytest.fixture(scope="module")
def normalizer():
    return PersianNormalizer()


@pytest.fixture()
def lexicon_path(tmp_path):
    path = tmp_path / "test.yaml"
    path.write_text(textwrap.dedent(LEXICON), encoding="utf-8")
    return path


def _lines(normalizer, texts):
    lines = [Line(start=1.0 + 5 * n, end=3.5 + 5 * n, text=text, transmission_idx=n, avg_logprob=-0.3)
             for n, text in enumerate(texts)]
    for line in lines:
        line.text_fa = normalizer.normalize(line.text)
    return lines


def _store_run(db, options: RunOptions, post: PostRecognition, lines, samples=None) -> None:
    """Derive `lines` with `post` and store them as a run with `options` would."""
    flags = post.derive(lines, samples, RATE)
    with Store(db, CREATE) as store:
        store.save_lexicon_terms(post.lexicon.version, post.lexicon.terms)
        run_id = store.start_run("hearing", "x", options.to_dict(), {})
        store.save_recording(RecordingFacts(path="/r/a.wav", sha256="a" * 64),
                             [Transmission(n, 5.0 * n, 5.0 * n + 5) for n in range(len(lines))], lines, flags,
                             run_id=run_id, engine="hearing", model="x", translator="none",
                             lexicon_version=post.lexicon.version)
        store.finish_run(run_id, {})


def _flags(db) -> list[tuple]:
    with Store(db, CREATE) as store:
        return [(r["concept"], r["kind"]) for r in store.rows("SELECT concept, kind FROM flags ORDER BY concept")]


def test_translate_keeps_the_loose_flags_of_run_acoustic_loose(tmp_path, normalizer, lexicon_path):
    lexicon = Lexicon.load(lexicon_path, normalizer=normalizer)
    options = RunOptions(acoustic_loose=0.5)  # `intercept run --acoustic-loose 0.5`
    engine = HearingEngine({(1.0, 3.5): "امشب پرنده را دیدم", (6.0, 8.5): "در انبار بود"})
    post = PostRecognition(normalizer, lexicon, engine=engine,
                           acoustic=AcousticCheck(lexicon, AcousticOptions(loose_threshold=options.acoustic_loose)))
    db = tmp_path / "s.db"
    # "امبال" is too far from انبار for the lexicon's own fuzzy match; the audio supports it.
    _store_run(db, options, post, _lines(normalizer, ["امشب پرندع را دیدم", "در امبال بود"]),
               np.zeros(12 * RATE, np.float32))
    assert _flags(db) == [("bird", "fuzzy"), ("depot", "fuzzy")]

    result = CliRunner().invoke(cli, ["translate", "--db", str(db), "--translator", "none",
                                      "--lexicon", str(lexicon_path)])
    assert result.exit_code == 0, result.output
    assert _flags(db) == [("bird", "fuzzy"), ("depot", "fuzzy")]  # the loose one stays

    flagged = CliRunner().invoke(cli, ["flag", "--db", str(db), "--lexicon", str(lexicon_path)])
    assert flagged.exit_code == 0, flagged.output
    assert _flags(db) == [("bird", "fuzzy"), ("depot", "fuzzy")]


def test_flag_keeps_the_guards_settings_of_the_run_config_file(tmp_path, normalizer, lexicon_path):
    phrases = tmp_path / "ours.txt"
    phrases.write_text("پرنده پرید\n", encoding="utf-8")  # a phrase this recogniser makes up
    config = tmp_path / "run.toml"
    config.write_text(f'[guards]\nphrases_path = "{phrases}"\nmax_repeats = 2\n', encoding="utf-8")
    options = load_config(config)  # `intercept run --config run.toml`
    lexicon = Lexicon.load(lexicon_path, normalizer=normalizer)
    post = PostRecognition(normalizer, lexicon, guard_options=options.guards)
    db = tmp_path / "s.db"
    _store_run(db, options, post, _lines(normalizer, ["پرنده پرید", "برو برو جلو", "امشب پرنده را دیدم"]))
    with Store(db, CREATE) as store:
        before = [r["suspect"] for r in store.rows("SELECT suspect FROM lines ORDER BY start_s")]
    assert before[0] and "hallucinated" in before[0]  # the run's own phrase list
    assert before[1] and "loop" in before[1]  # max_repeats = 2: "برو برو" is a loop
    assert before[2] is None

    result = CliRunner().invoke(cli, ["flag", "--db", str(db), "--lexicon", str(lexicon_path)])
    assert result.exit_code == 0, result.output
    with Store(db, CREATE) as store:
        after = [r["suspect"] for r in store.rows("SELECT suspect FROM lines ORDER BY start_s")]
    assert after == before


def test_correct_marks_the_corrected_text_with_the_guards_of_the_lines_run(tmp_path, normalizer, lexicon_path):
    phrases = tmp_path / "ours.txt"
    phrases.write_text("پرنده پرید\n", encoding="utf-8")
    config = tmp_path / "run.toml"
    config.write_text(f'[guards]\nphrases_path = "{phrases}"\n', encoding="utf-8")
    options = load_config(config)
    lexicon = Lexicon.load(lexicon_path, normalizer=normalizer)
    db = tmp_path / "s.db"
    _store_run(db, options, PostRecognition(normalizer, lexicon, guard_options=options.guards),
               _lines(normalizer, ["امشب پرنده را دیدم"]))
    with Store(db, CREATE) as store:
        [line] = store.rows("SELECT id, suspect FROM lines")
    assert line["suspect"] is None
    result = CliRunner().invoke(cli, ["correct", str(db), str(line["id"]), "--fa", "پرنده پرید", "--reviewer", "r",
                                      "--lexicon", str(lexicon_path)])
    assert result.exit_code == 0, result.output
    with Store(db, CREATE) as store:
        [after] = store.rows("SELECT suspect FROM lines")
    assert after["suspect"] and "hallucinated" in after["suspect"]


def _line_after(db) -> tuple:
    with Store(db, CREATE) as store:
        [line] = store.rows("SELECT id, text_fa, suspect FROM lines")
        flags = store.rows("SELECT concept, kind, score, source FROM flags WHERE superseded_by_revision IS NULL "
                           "ORDER BY concept, kind")
    return line["text_fa"], line["suspect"], [tuple(f.values()) for f in flags]


def test_the_desk_corrects_a_line_as_intercept_correct_does_with_its_runs_guards(tmp_path, normalizer,
                                                                                  lexicon_path):
    """The review desk's correction route (intercept.review.corrections) derives the corrected
    line with the guards of the run that stored it, as `intercept correct` does: the same
    suspect mark and the same flags. Before, the desk used the default guards."""
    from test_review import PASSWORD, REVIEWER, login, run

    from intercept.review import ReviewOptions, hash_password, make_datasette

    phrases = tmp_path / "ours.txt"
    phrases.write_text("پرنده پرید\n", encoding="utf-8")  # a phrase this run's recogniser makes up
    config = tmp_path / "run.toml"
    config.write_text(f'[guards]\nphrases_path = "{phrases}"\n', encoding="utf-8")
    options = load_config(config)
    lexicon = Lexicon.load(lexicon_path, normalizer=normalizer)
    stores = []
    for name in ("cli", "desk"):
        db = tmp_path / name / "s.db"
        db.parent.mkdir()
        _store_run(db, options, PostRecognition(normalizer, lexicon, guard_options=options.guards),
                   _lines(normalizer, ["امشب پرنده را دیدم"]))
        stores.append(db)
    cli_db, desk_db = stores
    corrected = "پرنده پرید"

    result = CliRunner().invoke(cli, ["correct", str(cli_db), "1", "--fa", corrected, "--reviewer", REVIEWER,
                                      "--lexicon", str(lexicon_path)])
    assert result.exit_code == 0, result.output

    ds = make_datasette(desk_db, ReviewOptions(accounts={REVIEWER: hash_password(PASSWORD, iterations=1000)},
                                               secret="test-secret", lexicons=[str(lexicon_path)]))

    async def correct_on_the_desk():
        cookies = await login(ds)
        return await ds.client.post("/-/intercept/correct", cookies=cookies, data={
            "line_id": "1", "text_fa": corrected, "csrftoken": cookies["ds_csrftoken"]})

    response = run(correct_on_the_desk())
    assert response.status_code == 200, response.text

    by_cli, by_desk = _line_after(cli_db), _line_after(desk_db)
    assert by_cli[1] and "hallucinated" in by_cli[1]  # the run's own phrase list marked it
    assert ("bird", "exact") in {flag[:2] for flag in by_cli[2]}
    assert by_desk == by_cli


@pytest.mark.parametrize("model, reason", [
    ("base", "calibrated (whisper-base)"),
    ("adapted", "calibrated (whisper-base, this adapted model's base)"),
    ("/no/such/model", "hand-set"),
])
def test_flag_scores_with_the_priors_of_the_model_that_wrote_the_lines(tmp_path, normalizer, model, reason):
    """`intercept flag` gives each run's lines the calibration `run --model` gave them: the
    embedded model's, an adapted model's base's, or none for a model not on this machine (never
    the embedded model's priors for another recogniser's lines)."""
    import json

    from intercept.lexicon import default_lexicon_path
    from intercept.models import EMBEDDED_SHA256

    if model == "adapted":
        folder = tmp_path / "adapted"
        folder.mkdir()
        (folder / "model.bin").write_bytes(b"weights")
        (folder / "config.json").write_text("{}", encoding="utf-8")
        (folder / "model_card.json").write_text(json.dumps({"base_model": {"sha256": EMBEDDED_SHA256}}),
                                                encoding="utf-8")
        model = str(folder)
    lexicon = Lexicon.load(default_lexicon_path(), normalizer=normalizer)
    db = tmp_path / "s.db"
    _store_run(db, RunOptions(model=model), PostRecognition(normalizer, lexicon),
               _lines(normalizer, ["امشب پرنده را دیدم"]))
    result = CliRunner().invoke(cli, ["flag", "--db", str(db)])
    assert result.exit_code == 0, result.output
    with Store(db, CREATE) as store:
        (row,) = store.rows("SELECT concept, prior_reason FROM flags WHERE concept = 'bird'")
    if reason == "hand-set":
        assert not (row["prior_reason"] or "").startswith("calibrated")
    else:
        assert row["prior_reason"].startswith(reason + ":")


def test_an_empty_value_in_a_config_file_turns_an_optional_option_off(tmp_path):
    from intercept.config import load_config
    from intercept.engines.base import batch_for, beam_for

    config = tmp_path / "c.toml"
    config.write_text('[transcribe]\ntranslate_beam_size = ""\ntranslate_batch = ""\ndecode_batch = 3\n')
    options = load_config(config).transcribe
    assert options.translate_beam_size is None and options.translate_batch is None
    assert beam_for(options, "translate") == options.beam_size and batch_for(options, "translate") == 3
