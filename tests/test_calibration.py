"""Priors from the recogniser's confusions (intercept.calibration, `intercept lexicon calibrate`)
and the support short and invented forms need (intercept.scoring)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from intercept.lexicon.calibration import Calibration, CalibrationError, count_confusions, reference_concepts
from intercept.lexicon import Lexicon, default_lexicon_path
from intercept.scoring import DEFAULT_THRESHOLD, UNSUPPORTED_CAP, FlagScorer, flag_evidence, score_flags
from intercept.text import PersianNormalizer
from intercept.types import Line, Word

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "data" / "calibration_corpus"
# What the scripted recogniser writes for each clip of the tiny corpus, in metadata.tsv order:
# right, «مین» for «من» twice, «کفتار» for «گفتار», a garbled «روبا» for «روباه».
WRITTEN = ["امشب پرنده را دیدم", "مین خسته هستم", "کفتار او زیبا بود", "روبا آمد", "مین اینجا هستم"]


@pytest.fixture(scope="module")
def normalizer():
    return PersianNormalizer()


@pytest.fixture(scope="module")
def lexicon(normalizer):
    return Lexicon.load(default_lexicon_path(), normalizer=normalizer, calibrated=False)


class ScriptedEngine:
    """Writes the next scripted text for each transmission it is given, in order (the corpus's
    clips are pooled in metadata order), so the counts can be worked out by hand."""

    def __init__(self, texts):
        self.texts = list(texts)
        self.calls = 0

    def transcribe(self, samples, transmissions, sample_rate=16000):
        self.calls += 1
        return [Line(tx.start, tx.end, self.texts.pop(0), transmission_idx=tx.idx) for tx in transmissions]


def _line(text, normalizer, probability=None):
    line = Line(0.0, 2.0, text, text_fa=normalizer.normalize(text))
    if probability is not None:
        line.words = [Word(w, 0.0, 1.0, probability) for w in text.split()]
    return line


# ---------------------------------------------------------------- counting, by hand


def test_counts_match_the_hand_count(lexicon, normalizer):
    clips = [(ref, [_line(text, normalizer)], 2.0) for ref, text in zip(
        ["امشب پرنده را دیدم", "من خسته هستم", "گفتار او زیبا بود", "روباه آمد", "من اینجا هستم"], WRITTEN)]
    counts = count_confusions(clips, lexicon, normalizer)
    got = {key: (c.written_wrong, c.written_right) for key, c in counts.forms.items()}
    assert got == {
        ("tonight", "امشب", "exact"): (0, 1),
        ("bird", "پرنده", "exact"): (0, 1),
        ("animal_with_time", "*", "pattern"): (0, 1),  # found across the line's flags, in the reference too
        ("landmine", "مین", "exact"): (2, 0),  # written for «من» in two clips
        ("hyena", "کفتار", "exact"): (1, 0),  # for «گفتار»
        ("fox", "روباه", "fuzzy"): (0, 1),  # garbled, but said
    }
    assert dict(counts.in_reference) == {"tonight": 1, "bird": 1, "animal_with_time": 1, "fox": 1}
    assert counts.clips == 5 and counts.seconds == 10.0
    # Every word written, against the clip's reference words (not only the lexicon's forms).
    assert counts.words["مین"] == [2, 0] and counts.words["هستم"] == [0, 2] and counts.words["روبا"] == [1, 0]
    calibration = Calibration.from_counts(counts, {"name": "scripted", "sha256": "0" * 64}, lexicon.version)
    # exact: 2 right of 5 written -> base (2 + 1) / (5 + 2)
    assert calibration.base["exact"] == pytest.approx(3 / 7, abs=1e-4)
    # Real (hazm-known) words by length, Laplace: 2 letters را, او right (3/4); 3 letters مین
    # wrong twice (1/4); 4 امشب, خسته, زیبا right (4/5); 5 پرنده, اینجا right, کفتار wrong (3/5).
    # Verb forms (دیدم, هستم, بود, آمد) and the garbled روبا are not in the word list.
    assert calibration.length_base == {2: 0.75, 3: 0.25, 4: 0.8, 5: 0.6}
    # An exact form's own counts pool toward its length's rate: مین (0 + 4 * 1/4) / (2 + 4)
    assert calibration.forms[("landmine", "مین", "exact")].prior == pytest.approx(1 / 6, abs=1e-3)
    assert calibration.forms[("bird", "پرنده", "exact")].prior == pytest.approx((1 + 4 * 0.6) / 5, abs=1e-3)
    # Other kinds pool toward their kind's rate: fuzzy 1 of 1 -> (1 + 1) / (1 + 2)
    assert calibration.forms[("fox", "روباه", "fuzzy")].prior == pytest.approx((1 + 4 * 2 / 3) / 5, abs=1e-3)
    # A form no lexicon concept was flagged with, but a word the recogniser wrote: its own record.
    prior, reason = calibration.prior("beauty", "زیبا", "exact")
    assert prior == pytest.approx((1 + 4 * 0.8) / 5, abs=1e-3) and "written 1x" in reason
    # never written: the rate of real words of its length, scaled by the hand-set prior
    assert calibration.prior("wolf", "گرگ", "exact")[0] == pytest.approx(0.25, abs=1e-3)
    assert calibration.prior("wolf", "گرگ", "exact", 0.25)[0] == pytest.approx(0.25 * 0.25, abs=1e-3)
    # a length no real word of was written: the exact base rate
    assert calibration.prior("x", "توپخانه", "exact")[0] == pytest.approx(3 / 7, abs=1e-3)


def test_a_form_counts_once_per_clip(lexicon, normalizer):
    counts = count_confusions([("من و من", [_line("مین و مین", normalizer), _line("مین", normalizer)], 1.0)],
                              lexicon, normalizer)
    assert counts.forms[("landmine", "مین", "exact")].written_wrong == 1


def test_reference_truth_uses_the_exact_matcher(lexicon, normalizer):
    assert reference_concepts(lexicon, "روبا آمد", normalizer) == set()  # no fuzzy on a reference
    assert reference_concepts(lexicon, "روباه‌ها آمدند", normalizer) == {"fox"}


def test_file_round_trip_and_bad_file(tmp_path, lexicon, normalizer):
    counts = count_confusions([("من", [_line("مین", normalizer)], 1.0)], lexicon, normalizer)
    calibration = Calibration.from_counts(counts, {"name": "m", "sha256": "ab"}, lexicon.version)
    path = calibration.save(tmp_path / "calibration" / "m.json")
    again = Calibration.load(path)
    assert again.forms == calibration.forms and again.base == calibration.base and again.model["sha256"] == "ab"
    assert again.words == calibration.words == {"مین": (1, 0)} and again.length_base == calibration.length_base
    # A file from before words were counted still loads; its forms pool toward the kind's base.
    old = json.loads(path.read_text(encoding="utf-8"))
    del old["words"], old["length_base"]
    (tmp_path / "old.json").write_text(json.dumps(old, ensure_ascii=False), encoding="utf-8")
    assert Calibration.load(tmp_path / "old.json").prior("wolf", "گرگ", "exact")[0] == calibration.base["exact"]
    (tmp_path / "bad.json").write_text('{"format": "something else"}', encoding="utf-8")
    with pytest.raises(CalibrationError, match="bad.json: not a calibration file"):
        Calibration.load(tmp_path / "bad.json")


# ---------------------------------------------------------------- the command, end to end


def test_calibrate_command_on_the_tiny_corpus(tmp_path, monkeypatch):
    """The CLI over tests/data/calibration_corpus with a scripted engine: the file it writes
    holds the hand-computed counts, and a lexicon loaded beside it scores with them."""
    from click.testing import CliRunner

    import intercept.engines
    from intercept.cli import cli

    engine = ScriptedEngine(WRITTEN)
    monkeypatch.setattr(intercept.engines, "load_engine", lambda *a, **k: engine)
    lexicons = tmp_path / "lexicons"
    lexicons.mkdir()
    (lexicons / "default.yaml").write_bytes(default_lexicon_path().joinpath("default.yaml").read_bytes())
    result = CliRunner().invoke(cli, ["lexicon", "calibrate", str(CORPUS), "--lexicon", str(lexicons)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    written = lexicons / "calibration" / "whisper-base.json"
    assert "5 clips" in result.output and str(written) in result.output
    data = json.loads(written.read_text(encoding="utf-8"))
    rows = {(r["concept"], r["form"], r["kind"]): (r["written_wrong"], r["written_right"]) for r in data["forms"]}
    assert rows[("landmine", "مین", "exact")] == (2, 0) and rows[("hyena", "کفتار", "exact")] == (1, 0)
    assert rows[("bird", "پرنده", "exact")] == (0, 1) and data["clips"] == 5
    assert engine.calls == 1  # five short clips pooled into one window, as the pipeline does
    from intercept.models import EMBEDDED_SHA256

    assert data["model"] == {"name": "whisper-base", "sha256": EMBEDDED_SHA256}
    # Loaded beside the lexicon for the embedded model: the flag's prior is the calibrated one.
    normalizer = PersianNormalizer()
    calibrated = Lexicon.load(lexicons, normalizer=normalizer)
    assert calibrated.calibration is not None
    line = _line("مین خسته هستم", normalizer, probability=0.9)
    (flag,) = score_flags([line], calibrated.flag_lines([line]), calibrated, normalizer)[0]
    assert flag.prior == pytest.approx(data["forms"][[r["concept"] for r in data["forms"]].index("landmine")]["prior"])
    assert "calibrated (whisper-base)" in flag.prior_reason


def test_calibrate_command_decodes_with_the_runs_settings(tmp_path, monkeypatch):
    """A calibration holds one recogniser's confusions with its decoding settings: the command
    reads the run's --config file ([transcribe]) and --beam-size etc. over it, and names them
    in the file's command."""
    from click.testing import CliRunner

    import intercept.engines
    from intercept.cli import cli

    seen = []

    def load(engine, path, name, options):
        seen.append(options)
        return ScriptedEngine(WRITTEN)

    monkeypatch.setattr(intercept.engines, "load_engine", load)
    config = tmp_path / "run.toml"
    config.write_text('[transcribe]\nbeam_size = 3\ncompute_type = "int8"\n', encoding="utf-8")
    out = tmp_path / "c.json"
    result = CliRunner().invoke(cli, ["lexicon", "calibrate", str(CORPUS), "--out", str(out), "--config", str(config),
                                      "--threads", "1"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (seen[-1].beam_size, seen[-1].compute_type, seen[-1].cpu_threads) == (3, "int8", 1)
    assert json.loads(out.read_text(encoding="utf-8"))["command"].endswith(f"--config {config}")

    result = CliRunner().invoke(cli, ["lexicon", "calibrate", str(CORPUS), "--out", str(out), "--config", str(config),
                                      "--beam-size", "2"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (seen[-1].beam_size, seen[-1].compute_type) == (2, "int8")  # the option over the file
    assert json.loads(out.read_text(encoding="utf-8"))["command"].endswith("--beam-size 2")

    CliRunner().invoke(cli, ["lexicon", "calibrate", str(CORPUS), "--out", str(out)], catch_exceptions=False)
    assert seen[-1].beam_size == intercept.engines.TranscribeOptions().beam_size  # no file: the defaults


def test_an_adapted_model_without_its_own_calibration_borrows_its_bases(tmp_path):
    from intercept.calibration import calibration_for_model
    from intercept.lexicon.calibration import embedded_calibration
    from intercept.models import EMBEDDED_SHA256

    files = Lexicon.load(default_lexicon_path(), normalizer=PersianNormalizer()).files
    shipped = embedded_calibration(files)
    model = tmp_path / "adapted"
    model.mkdir()
    (model / "model.bin").write_bytes(b"not the base's weights")
    assert calibration_for_model(files, str(model), str(model)) is None  # no card: hand-set priors

    card = {"base_model": {"name": "base", "sha256": EMBEDDED_SHA256}, "wer_before": 0.9, "wer_after": 0.8}
    (model / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    borrowed = calibration_for_model(files, str(model), str(model))
    assert borrowed is not None and borrowed.forms == shipped.forms
    assert borrowed.model["name"] == "whisper-base, this adapted model's base"
    assert shipped.model["name"] == "whisper-base"  # the loaded file itself is not renamed
    prior, reason = borrowed.prior("landmine", "مین", "exact")
    shipped_prior, shipped_reason = shipped.prior("landmine", "مین", "exact")
    assert prior == shipped_prior
    assert reason == shipped_reason.replace("(whisper-base)", "(whisper-base, this adapted model's base)")

    card["base_model"]["sha256"] = "0" * 64  # a base no calibration beside the lexicon was made with
    (model / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    assert calibration_for_model(files, str(model), str(model)) is None
    (model / "model_card.json").write_text("{not json", encoding="utf-8")
    assert calibration_for_model(files, str(model), str(model)) is None


def test_calibrate_command_reports_a_bad_corpus(tmp_path):
    from click.testing import CliRunner

    from intercept.cli import cli

    (tmp_path / "metadata.tsv").write_text("path\tduration_s\ttranscript\nmissing.mp3\t1.0\tمن\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["lexicon", "calibrate", str(tmp_path), "--out", str(tmp_path / "c.json")])
    assert result.exit_code != 0 and "missing.mp3" in result.output and "not found" in result.output
    assert not (tmp_path / "c.json").exists()


# ---------------------------------------------------------------- short and invented forms need support


def _scorer():
    """A scorer that would queue every flag (all weights 0, bias +2): only the support rule can hold one back."""
    from intercept.scoring import FEATURES

    return FlagScorer(version="test", bias=2.0, weights=tuple(0.0 for _ in FEATURES))


def test_short_form_without_support_stays_out_of_the_queue(lexicon, normalizer):
    line = _line("مین خسته هستم", normalizer, probability=0.3)
    (flag,) = score_flags([line], lexicon.flag_lines([line]), lexicon, normalizer, _scorer())[0]
    assert flag.score <= UNSUPPORTED_CAP < DEFAULT_THRESHOLD
    assert "needs support (3-letter form)" in flag.prior_reason


def test_short_form_with_recogniser_evidence_or_a_partner_counts(lexicon, normalizer):
    sure = _line("مین خسته هستم", normalizer, probability=0.95)
    (flag,) = score_flags([sure], lexicon.flag_lines([sure]), lexicon, normalizer, _scorer())[0]
    assert flag.score > DEFAULT_THRESHOLD and not flag.prior_reason
    partnered = _line("روباه مین گذاشت", normalizer, probability=0.3)  # an animal beside a weapon: a pattern partner
    flags = score_flags([partnered], lexicon.flag_lines([partnered]), lexicon, normalizer, _scorer())[0]
    mine = [f for f in flags if f.concept == "landmine"]
    assert mine and mine[0].score > DEFAULT_THRESHOLD


def test_a_long_form_the_recogniser_invents_needs_support(lexicon, normalizer):
    counts = count_confusions([("گفتار", [_line("کفتار", normalizer)], 1.0)] * 3, lexicon, normalizer)
    calibrated = lexicon.with_calibration(Calibration.from_counts(counts, {"name": "m", "sha256": "x"}, lexicon.version))
    line = _line("کفتار او زیبا بود", normalizer, probability=0.3)
    (plain,) = flag_evidence([line], lexicon.flag_lines([line]), lexicon, normalizer)[0]
    assert not plain.unsupported  # five letters, no calibration: no support needed
    (invented,) = flag_evidence([line], calibrated.flag_lines([line]), calibrated, normalizer)[0]
    assert "recogniser writes it for other words (3 of 3" in invented.unsupported
    assert invented.evidence.prior < 0.5


def test_analyst_prior_wins_over_calibration(tmp_path, normalizer):
    path = tmp_path / "l.yaml"
    path.write_text("concepts:\n  - id: landmine\n    category: weapon\n    fa: [مین]\n    prior: 0.9\n",
                    encoding="utf-8")
    own = Lexicon.load(path, normalizer=normalizer)
    counts = count_confusions([("من", [_line("مین", normalizer)], 1.0)] * 5, own, normalizer)
    calibrated = own.with_calibration(Calibration.from_counts(counts, {"name": "m", "sha256": "x"}, own.version))
    line = _line("مین", normalizer, probability=0.9)
    (c,) = flag_evidence([line], calibrated.flag_lines([line]), calibrated, normalizer)[0]
    assert c.evidence.prior == 0.9 and c.flag.prior_reason == "lexicon prior 0.9"


def test_the_desk_shows_why_a_short_form_is_held_back(lexicon, normalizer):
    from dataclasses import asdict

    from intercept.review.desk import describe_line, flags_html

    line = _line("مین خسته هستم", normalizer, probability=0.3)
    (flag,) = score_flags([line], lexicon.flag_lines([line]), lexicon, normalizer, _scorer())[0]
    row = {**asdict(flag), "id": 1}
    described = describe_line({"id": 1, "text_fa": line.text_fa, "text_en": ""}, [row], has_trust=True)
    assert '<div class="intercept-support">needs support (3-letter form): none</div>' in str(flags_html(described))
    sure = _line("مین خسته هستم", normalizer, probability=0.95)
    (flag,) = score_flags([sure], lexicon.flag_lines([sure]), lexicon, normalizer, _scorer())[0]
    described = describe_line({"id": 1, "text_fa": sure.text_fa, "text_en": ""}, [{**asdict(flag), "id": 1}], True)
    assert "intercept-support" not in str(flags_html(described))


# ---------------------------------------------------------------- the scorer moved to the real prevalence


def test_prior_shift_moves_the_score_to_the_forms_prior():
    import math

    from intercept.scoring import FEATURES, Evidence, ScorerError

    data = {"version": "t", "bias": 1.0, "weights": {name: 0.0 for name in FEATURES}, "prior_shift": 1.0}
    scorer = FlagScorer.from_dict(data)
    rare = Evidence("exact", 1.0, False, False, prior=0.1)
    # logit = bias 1.0 - shift 1.0 + logit(0.1): the fitted odds moved to the form's own rate
    assert scorer.score(rare) == pytest.approx(0.1)
    assert scorer.score(Evidence("exact", 1.0, False, False, prior=0.5)) == pytest.approx(0.5)
    assert scorer.score(Evidence("exact", 1.0, False, False)) == pytest.approx(1 / (1 + math.exp(-1.0)))
    assert FlagScorer.from_dict(scorer.to_dict()) == scorer
    with pytest.raises(ScorerError, match="prior_shift"):
        FlagScorer.from_dict({**data, "prior_shift": "high"})


def test_fit_sample_weights_move_the_bias():
    from intercept.scoring import Evidence, fit

    rows = [Evidence("exact", 1.0, False, False)] * 4
    agreed = [True, True, False, False]
    even = fit(rows, agreed, "t", "", "")
    rare = fit(rows, agreed, "t", "", "", sample_weight=[0.1, 0.1, 1.0, 1.0])
    assert rare.score(rows[0]) < 0.2 < even.score(rows[0]) == pytest.approx(0.5, abs=0.05)


def test_the_queue_on_the_samples_holds_the_coded_bird_line(sample_batch):
    """audio_samples/bird_or_fox: the coded «پرنده است یا روباه» line stays in the review queue
    (`export --format jsonl --flagged-only`) with the calibration and scorer shipped now."""
    from click.testing import CliRunner

    from intercept.cli import cli

    db, _, _ = sample_batch
    result = CliRunner().invoke(cli, ["export", str(db), "--format", "jsonl", "--flagged-only"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in result.output.splitlines() if x.startswith("{")]
    coded = [r for r in rows if "bird_or_fox" in str(r.get("recording_path"))
             and "bird" in json.dumps(r.get("flags"), ensure_ascii=False)]
    assert coded, [(r.get("recording_path"), r.get("text_fa")) for r in rows]
