from intercept.guards import GuardOptions, Guards, load_phrases, repeated_ngram
from intercept.types import Line


def _line(text, cr=1.2, nsp=0.1, lp=-0.4):
    return Line(0, 1, text, compression_ratio=cr, no_speech_prob=nsp, avg_logprob=lp)


def test_clean_line_is_not_suspect():
    guards = Guards()
    line = _line("امشب برویم ببینیم پرنده است یا روباه")
    guards.mark([line])
    assert line.suspect is None


def test_each_guard_gives_its_reason():
    guards = Guards()
    cases = {
        "compression ratio": _line("سلام", cr=3.1),
        "probably no speech": _line("سلام", nsp=0.9, lp=-1.5),
        "decoding loop": _line("برو برو برو برو برو"),
        "known hallucinated phrase": _line("Thanks for watching!"),
    }
    for reason, line in cases.items():
        guards.mark([line])
        assert line.suspect and reason in line.suspect, (reason, line.suspect)


def test_no_speech_needs_low_logprob_too():
    line = _line("سلام", nsp=0.9, lp=-0.2)
    Guards().mark([line])
    assert line.suspect is None


def test_repeated_ngram_finds_multiword_loops():
    words = "ما ما رفتیم و آمدیم و آمدیم و آمدیم و آمدیم".split()
    assert repeated_ngram(words, 4) == "و آمدیم"
    assert repeated_ngram("یک دو سه چهار".split(), 4) is None


def test_farsi_phrase_with_zwnj_variants(tmp_path):
    phrases = tmp_path / "h.txt"
    # "*": a credit, any words after it (a line holding more than listed phrases is not suspect).
    phrases.write_text("# comment\nزیرنویس فارسی *\n", encoding="utf-8")
    assert load_phrases(phrases) == ["زیرنویس فارسی *"]
    line = _line("زیرنویس\u200cفارسی توسط")
    Guards(GuardOptions(phrases_path=phrases)).mark([line])
    assert "hallucinated" in line.suspect


def test_translation_loop_is_suspect():
    line = _line("سلام")
    line.text_en = "Yes, I am the one who is the one who is the one who is the one who is the one"
    Guards().mark([line])
    assert "translation loop" in line.suspect


def test_guards_read_the_normalised_text():
    """زيرنويس with Arabic ي is the listed زیرنویس once normalised; the guards read text_fa."""
    from intercept.text import PersianNormalizer

    normalizer = PersianNormalizer()
    guards = Guards(normalize=normalizer.normalize)
    raw = "زيرنويس"
    assert raw != "زیرنویس"
    line = _line(raw)
    line.text_fa = normalizer.normalize(raw)
    guards.mark([line])
    assert line.suspect and "hallucinated" in line.suspect


def test_post_recognition_marks_the_arabic_spelling_like_the_persian(tmp_path):
    from intercept.derive import PostRecognition
    from intercept.lexicon import Lexicon, default_lexicon_path
    from intercept.text import PersianNormalizer

    normalizer = PersianNormalizer()
    post = PostRecognition(normalizer, Lexicon.load(default_lexicon_path(), normalizer=normalizer))
    lines = [_line("زيرنويس"), _line("زیرنویس")]
    post.derive(lines)
    assert lines[0].suspect == lines[1].suspect and "hallucinated" in lines[0].suspect
