import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from click.testing import CliRunner

from intercept.cli import cli


def test_help_reads_like_documentation():
    runner = CliRunner()
    top = runner.invoke(cli, ["--help"])
    assert top.exit_code == 0
    for command in ("run", "review", "match", "models"):
        assert command in top.output
    run = runner.invoke(cli, ["run", "--help"])
    assert "Exit status" in run.output and "--model" in run.output and "--translator" in run.output
    for command in (["review"], ["match"], ["models", "path"], ["models", "verify"]):
        result = runner.invoke(cli, [*command, "--help"])
        assert result.exit_code == 0 and len(result.output.splitlines()) > 4, command


def test_match_prints_json_flags():
    result = CliRunner().invoke(cli, ["match", "امشب برویم ببینیم پرنده است یا روباه"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"bird", "fox"} <= {f["concept"] for f in data["flags"]}
    for flag in data["flags"]:
        if flag["kind"] != "english":
            assert data["text_fa"][flag["span_start"]:flag["span_end"]] == flag["matched"]


def test_match_shows_each_flags_prior_and_its_reason():
    result = CliRunner().invoke(cli, ["match", "پرنده", "کفتار"])
    bird, hyena = (json.loads(line)["flags"][0] for line in result.output.splitlines())
    assert (bird["prior"], bird["prior_reason"]) == (1.0, None)
    assert hyena["prior"] < 0.5 and hyena["prior_reason"] == "sound_alike: گفتار"


def test_match_reads_stdin_one_text_per_line():
    result = CliRunner().invoke(cli, ["match"], input="هوا آفتابی است\nروباه\n")
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == 2 and rows[0]["flags"] == [] and rows[1]["flags"]


def _fresh_python(code: str, **env) -> list[str]:
    """stdout lines of `code` run by a new interpreter on this checkout."""
    root = str(Path(__file__).resolve().parent.parent)
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]), **env)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                            timeout=900, cwd=root)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


_TEXTS = ["امشب برويم ببينيم پرنده است يا روباه", "پرنده‌ها رو ديديم ، كفتار هم بود", "مي روم به خانه‌ ي ما"]


def test_match_starts_without_the_libraries_it_does_not_use():
    """`intercept match` answers in under a second only without the recogniser, translator and
    review server's libraries, and without what only hazm's taggers need (scikit-learn, SciPy,
    the rest of NLTK: intercept.text imports hazm's normaliser alone). The whole hazm package is
    still there for whoever imports it afterwards, and the normaliser writes what it writes with it."""
    heavy = ("sklearn", "scipy", "torch", "transformers", "datasette", "ctranslate2", "faster_whisper",
             "nltk.corpus", "nltk.metrics", "nltk.translate")
    code = (f"import json, sys\nfrom intercept.cli import cli\n"
            f"try:\n    cli(['match', {_TEXTS[0]!r}])\nexcept SystemExit:\n    pass\n"
            f"print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))\n"
            f"from intercept.text import PersianNormalizer\nimport hazm\n"
            f"print(json.dumps([PersianNormalizer().normalize(t) for t in {_TEXTS!r}]))\n"
            f"print(hazm.POSTagger.__name__, hazm.sent_tokenize('سلام. خوبی؟') == ['سلام.', 'خوبی؟'])\n")
    output = _fresh_python(code)
    assert {"bird", "fox"} <= {f["concept"] for f in json.loads(output[0])["flags"]}
    assert json.loads(output[1]) == []
    assert output[3] == "POSTagger True"
    # The same text as with `import hazm` whole, before anything else.
    plain = _fresh_python(f"import json\nfrom intercept.text import PersianNormalizer\n"
                          f"print(json.dumps([PersianNormalizer().normalize(t) for t in {_TEXTS!r}]))",
                          INTERCEPT_HAZM_LIGHT="0")
    assert json.loads(output[2]) == json.loads(plain[0]) and json.loads(plain[0])[0] != _TEXTS[0]


@pytest.mark.parametrize("first", ["nltk.word_tokenize", "import nltk.corpus", "import nltk.stem; nltk.stem.PorterStemmer",
                                   "from nltk.tokenize import word_tokenize", "import hazm; hazm.POSTagger"])
def test_hazm_and_nltk_imported_after_the_light_start_are_the_whole_packages(first):
    """After intercept.text's light import (intercept/lightimport.py), whatever asks for more of
    NLTK or hazm first (a name, a submodule's import, `from ... import *`) gets the whole
    packages: every name a plain import gives, with hazm's classes still NLTK's subclasses."""
    names = ("import json, sys\nimport nltk, hazm, nltk.stem, nltk.tokenize\n"
             "nltk.word_tokenize, hazm.POSTagger, nltk.corpus.stopwords\n"
             "print(json.dumps({m: sorted(k for k in vars(sys.modules[m]) if not k.startswith('__') or k == '__version__')"
             " for m in ('nltk', 'nltk.stem', 'nltk.tokenize', 'hazm')}))\n")
    light = _fresh_python("import intercept.text\n"
                          "import sys\nprint(sorted(m for m in ('nltk.corpus', 'nltk.stem.porter') if m in sys.modules))\n"
                          f"import nltk\n{first}\n" + names +
                          "from nltk.stem import *\nfrom hazm import *\n"
                          "print(PorterStemmer.__name__, POSTagger.__name__, issubclass(Stemmer, nltk.stem.api.StemmerI),"
                          " issubclass(WordTokenizer, nltk.tokenize.api.TokenizerI))\n")
    plain = _fresh_python(names)
    assert light[0] == "[]"  # NLTK's __init__ files did not run in the light import
    whole, plain_names = json.loads(light[1]), json.loads(plain[0])
    assert all(whole[m] == plain_names[m] for m in plain_names) and len(plain_names["nltk"]) > 100
    assert light[2] == "PorterStemmer POSTagger True True"


def test_run_with_bad_model_stops_before_work(tmp_path):
    result = CliRunner().invoke(cli, ["run", str(tmp_path), "--db", str(tmp_path / "x.db"), "--model", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a CTranslate2 Whisper model" in result.output


def test_run_with_bad_config_names_the_option(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text('modle = "base"\n')
    result = CliRunner().invoke(cli, ["run", str(tmp_path), "--db", str(tmp_path / "x.db"), "--config", str(config)])
    assert result.exit_code == 2 and "modle" in result.output


def test_models_path_prints_embedded_dir():
    result = CliRunner().invoke(cli, ["models", "path"])
    assert result.exit_code == 0 and result.output.strip().endswith("whisper-base-ct2")


def _small_store(path):
    from intercept.store import CREATE, RecordingFacts, Store
    from intercept.types import Flag, Hypothesis, Line, Transmission, Word

    with Store(path, CREATE) as store:
        for name in ("a", "b"):
            store.save_recording(
                RecordingFacts(path=f"/r/{name}.wav", sha256=name * 64),
                [Transmission(0, 0.0, 3.0)],
                # With the recogniser's evidence, as a run stores it: at real prevalence an exact
                # match with none scores below the queue (docs/review.md).
                [Line(0.5, 2.5, "پرنده", text_fa="پرنده", text_en="bird", words=[Word("پرنده", 0.5, 2.5, 0.9)],
                      alternatives=[Hypothesis("پرنده", -0.1, 2)], confidence=0.9)],
                [[Flag("bird", "animal_code", "exact", 1.0, 0, 5, "پرنده")]],
                run_id=None, engine="e", model="m", translator="t", lexicon_version="old",
            )
    return path


def test_flag_export_and_verify_commands(tmp_path):
    db = _small_store(tmp_path / "s.db")
    runner = CliRunner()
    flagged = runner.invoke(cli, ["flag", "--db", str(db), "--json"])
    assert flagged.exit_code == 0, flagged.output
    data = json.loads(flagged.output)
    assert data["lines"] == 2 and data["flags_after"] >= 2 and data["lexicon_version"] != "old"

    csv_out = runner.invoke(cli, ["export", str(db), "--format", "jsonl", "--flagged-only"])
    assert csv_out.exit_code == 0 and len(csv_out.output.splitlines()) == 2
    srt = runner.invoke(cli, ["export", str(db), "--format", "srt"])
    assert srt.exit_code != 0 and "--recording" in srt.output

    # The originals /r/a.wav and /r/b.wav do not exist: verify says so and exits 1.
    verified = runner.invoke(cli, ["verify", str(db)])
    assert verified.exit_code == 1 and "MISSING /r/a.wav" in verified.output
    assert runner.invoke(cli, ["verify", str(tmp_path / "none.db")]).exit_code == 2


def test_worker_options_need_ray(tmp_path):
    result = CliRunner().invoke(cli, ["run", str(tmp_path), "--db", str(tmp_path / "x.db"), "--workers", "2"])
    assert result.exit_code == 2 and "need --ray" in result.output


def test_translate_with_missing_mt_model_stops(tmp_path):
    db = _small_store(tmp_path / "s.db")
    result = CliRunner().invoke(cli, ["translate", "--db", str(db), "--mt-model", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "nope" in result.output


def test_the_store_is_the_first_argument_and_the_old_db_spelling_still_works(tmp_path):
    """Issue 26: every command names the store STORE, first; `--db STORE` (hidden) still works."""
    runner = CliRunner()
    for command in (["run"], ["translate"], ["flag"], ["review"], ["export"], ["verify"], ["voices"], ["migrate"],
                    ["correct"], ["lexicon", "suggestions"]):
        shown = runner.invoke(cli, [*command, "--help"])
        assert shown.exit_code == 0 and "STORE" in shown.output.splitlines()[0], command
        assert "--db" not in shown.output, command
    db = _small_store(tmp_path / "s.db")
    new = runner.invoke(cli, ["flag", str(db), "--json"])
    old = runner.invoke(cli, ["flag", "--db", str(db), "--json"])
    assert new.exit_code == old.exit_code == 0, new.output + old.output
    assert json.loads(new.output)["lines"] == json.loads(old.output)["lines"] > 0
    both = runner.invoke(cli, ["flag", str(db), "--db", str(db)])
    assert both.exit_code == 2 and "once" in both.output
    # run: the first argument is the store, so a recording or a folder there is refused, untouched.
    wav = tmp_path / "a.wav"
    wav.write_bytes(b"RIFF")
    for first in (wav, tmp_path):
        refused = runner.invoke(cli, ["run", str(first), str(wav), "--workers", "2"])
        assert refused.exit_code == 2 and "STORE comes first" in refused.output, refused.output
    assert wav.read_bytes() == b"RIFF"
    alone = runner.invoke(cli, ["run", str(tmp_path / "x.db")])
    assert alone.exit_code == 2 and "PATHS" in alone.output
    # The old spelling: every argument is a PATH.
    old_run = runner.invoke(cli, ["run", str(tmp_path), "--db", str(tmp_path / "x.db"), "--workers", "2"])
    assert old_run.exit_code == 2 and "need --ray" in old_run.output


def test_exit_status_policy_is_stated_once_and_bad_input_exits_2(tmp_path):
    top = CliRunner().invoke(cli, ["--help"])
    assert "Exit status, for every command" in top.output and "2  bad input or options" in top.output
    db = _small_store(tmp_path / "s.db")
    # Bad options (srt of a store of several recordings needs --recording) were exit 1 before.
    result = CliRunner().invoke(cli, ["export", str(db), "--format", "srt"])
    assert result.exit_code == 2, result.output
    models = CliRunner().invoke(cli, ["models", "path", str(tmp_path / "no-such-model")])
    assert models.exit_code == 2, models.output
