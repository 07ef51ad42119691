"""Tests for intercept.evaluate: WER/CER after hazm normalisation, and corpus reading."""
from __future__ import annotations

import pytest

from intercept.evaluate import CorpusError, ErrorCounts, ErrorRateScorer, read_corpus


@pytest.fixture(scope="module")
def scorer():
    return ErrorRateScorer()


def test_identical_text_scores_zero(scorer):
    counts = scorer.score("امشب برویم ببینیم پرنده است یا روباه", "امشب برویم ببینیم پرنده است یا روباه")
    assert (counts.wer, counts.cer, counts.reference_words) == (0.0, 0.0, 7)


def test_spelling_variants_the_pipeline_normalises_are_not_errors(scorer):
    # Arabic yeh and kaf, a diacritic, punctuation, and می with a space instead of ZWNJ.
    reference = "پرنده‌ای کوچک می‌آید."
    hypothesis = "پرنده‌اي كوچَک می آید"
    counts = scorer.score(reference, hypothesis)
    assert counts.wer == 0.0
    assert counts.cer == 0.0


def test_word_substitution_deletion_and_insertion(scorer):
    reference = "امشب برویم ببینیم پرنده است یا روباه"  # 7 words
    counts = scorer.score(reference, "امشب برویم ببینیم گربه است یا روباه")
    assert counts.word_edits == 1 and counts.wer == pytest.approx(1 / 7)
    counts = scorer.score(reference, "امشب ببینیم پرنده است یا روباه")
    assert counts.word_edits == 1
    counts = scorer.score(reference, "امشب برویم ببینیم پرنده است یا روباه روباه روباه")
    assert counts.word_edits == 2 and counts.wer == pytest.approx(2 / 7)


def test_character_errors_count_letters_not_words(scorer):
    counts = scorer.score("روباه", "رو باه")  # one inserted space
    assert counts.wer == pytest.approx(2.0)  # one substitution and one insertion
    assert counts.char_edits == 1
    assert counts.cer == pytest.approx(1 / 5)


def test_empty_hypothesis_is_all_deletions(scorer):
    counts = scorer.score("پرنده است", "")
    assert counts.wer == 1.0 and counts.cer == 1.0


def test_corpus_scores_are_micro_averaged(scorer):
    total = scorer.score_corpus([("یک دو سه چهار", "یک دو سه چهار"), ("پنج", "شش")])
    assert total.utterances == 2
    assert total.word_edits == 1 and total.reference_words == 5
    assert total.wer == pytest.approx(0.2)  # not the mean of 0.0 and 1.0


def test_empty_reference():
    assert ErrorCounts().wer == 0.0
    assert ErrorCounts(word_edits=2).wer == 2.0


def write_corpus(folder, rows, header="path\tduration_s\ttranscript"):
    (folder / "clips").mkdir(exist_ok=True)
    lines = [header]
    for name, duration, text in rows:
        (folder / "clips" / name).write_bytes(b"RIFF")
        lines.append(f"clips/{name}\t{duration}\t{text}")
    (folder / "metadata.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_read_corpus(tmp_path):
    write_corpus(tmp_path, [("a.mp3", "7.44", 'که "دیگه" نور (علی'), ("b.mp3", "", "یک")])
    items = read_corpus(tmp_path)
    assert [item.path.name for item in items] == ["a.mp3", "b.mp3"]
    assert items[0].duration_s == pytest.approx(7.44) and items[1].duration_s is None
    assert items[0].transcript == 'که "دیگه" نور (علی'  # quotes are text, not CSV quoting
    assert items[0].path.is_absolute()


def test_read_corpus_takes_the_transcript_column_alone(tmp_path):
    """Columns after the transcript (an exported corpus's speaker, voice, recording...) are not
    text: a model adapted on them would learn to write them. A tab inside a transcript (TSV is
    not quoted) stays in it."""
    write_corpus(tmp_path, [("a.mp3", "1.0", "سلام دنیا\tspk001\tv1")], header="path\tduration_s\ttranscript\tspeaker\tvoice_id")
    assert [item.transcript for item in read_corpus(tmp_path)] == ["سلام دنیا"]
    write_corpus(tmp_path, [("a.mp3", "1.0", "سلام\tدنیا\tspk001")], header="path\tduration_s\ttranscript\tspeaker")
    assert [item.transcript for item in read_corpus(tmp_path)] == ["سلام\tدنیا"]
    write_corpus(tmp_path, [("a.mp3", "1.0", "سلام\tدنیا")])
    assert [item.transcript for item in read_corpus(tmp_path)] == ["سلام\tدنیا"]


def test_read_corpus_errors_name_the_file_and_reason(tmp_path):
    with pytest.raises(CorpusError, match="no metadata.tsv"):
        read_corpus(tmp_path)
    write_corpus(tmp_path, [("a.mp3", "1", "x")], header="file\ttext")
    with pytest.raises(CorpusError, match="header must be"):
        read_corpus(tmp_path)
    write_corpus(tmp_path, [("a.mp3", "1", "x")])
    (tmp_path / "metadata.tsv").write_text("path\tduration_s\ttranscript\nclips/missing.mp3\t1\tx\n",
                                           encoding="utf-8")
    with pytest.raises(CorpusError, match=r"line 2: clip .*missing.mp3' not found"):
        read_corpus(tmp_path)
    (tmp_path / "metadata.tsv").write_text("path\tduration_s\ttranscript\nclips/a.mp3\tlong\tx\n",
                                           encoding="utf-8")
    with pytest.raises(CorpusError, match="is not a number"):
        read_corpus(tmp_path)
