"""Translators: a real (tiny, randomly initialised) M2M100 built in a fixture and loaded through
the same code a user's model goes through, on PyTorch and CTranslate2; the fallback when a
model cannot be loaded; re-translation of a store; and Whisper's translate task on a sample."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("sentencepiece")

from intercept.retranslate import retranslate  # noqa: E402
from intercept.store import CREATE, RecordingFacts, Store  # noqa: E402
from intercept.translate import (  # noqa: E402
    MTModelError,
    MTOptions,
    NoTranslator,
    TransformersTranslator,
    WhisperTranslator,
    make_translator,
    model_fingerprint,
)
from intercept.types import Line, Transmission  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
FARSI = [
    "امشب برویم ببینیم پرنده است یا روباه",
    "روشن دریافت شد",
    "ایستگاه دو اینجا ایستگاه یک صدای مرا دارید",
    "گرگ ها از کوه پایین آمده اند مراقب گله باشید",
    "سه تا فردا صبح دوباره تماس می گیرم",
]
CORPUS = FARSI + [
    "tonight let's go see whether it is a bird or a fox",
    "received",
    "station two this is station one do you hear me",
    "the wolves have come down from the mountain watch the flock",
]


def opts(**kwargs) -> MTOptions:
    # One thread and greedy search: on a shared 2-core machine two torch threads spin against
    # each other (measured 20x slower), and greedy output is exactly comparable across paths.
    return MTOptions(**{"threads": 1, "beam_size": 1, **kwargs})


def build_tiny_m2m100(
    directory: Path, d_model: int = 16, layers: int = 1, heads: int = 2, ffn: int = 32, vocab_size: int = 0
) -> Path:
    """A randomly initialised M2M100 with a sentencepiece tokenizer trained here on a few lines,
    saved the way hub models are. The defaults make a tiny one for tests;
    scripts/bench_translate.py also builds one of m2m100_418M's size (speed does not depend on
    the weights). ``vocab_size`` 0: just what the tokenizer needs."""
    import sentencepiece as spm
    import torch
    from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

    directory.mkdir(parents=True, exist_ok=True)
    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(CORPUS * 10), model_writer=proto, vocab_size=80, model_type="unigram",
        character_coverage=1.0, hard_vocab_limit=False, minloglevel=2,
    )
    (directory / "sentencepiece.bpe.model").write_bytes(proto.getvalue())
    pieces = spm.SentencePieceProcessor(model_proto=proto.getvalue())
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for i in range(pieces.get_piece_size()):
        vocab.setdefault(pieces.id_to_piece(i), len(vocab))
    (directory / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    # Real M2M100 vocabularies are pieces, then 100 language codes, then "madeup" words that
    # pad the embedding (8 in the real models; more here for a real-size embedding).
    languages = 100
    madeup = max(8, vocab_size - len(vocab) - languages)
    tokenizer = M2M100Tokenizer(
        vocab_file=str(directory / "vocab.json"), spm_file=str(directory / "sentencepiece.bpe.model"),
        src_lang="fa", tgt_lang="en", num_madeup_words=madeup,
    )
    tokenizer.save_pretrained(directory)
    config = M2M100Config(
        vocab_size=max(tokenizer.lang_token_to_id.values()) + 1 + madeup, d_model=d_model,
        encoder_layers=layers, decoder_layers=layers, encoder_attention_heads=heads, decoder_attention_heads=heads,
        encoder_ffn_dim=ffn, decoder_ffn_dim=ffn, max_position_embeddings=1024 if vocab_size else 128,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
    )
    torch.manual_seed(0)
    M2M100ForConditionalGeneration(config).save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_m2m100(tmp_path_factory) -> Path:
    return build_tiny_m2m100(tmp_path_factory.mktemp("mt") / "tiny-m2m100")


@pytest.fixture(scope="module")
def torch_translator(tiny_m2m100) -> TransformersTranslator:
    return TransformersTranslator(str(tiny_m2m100), opts(backend="torch", batch_size=4))


def test_local_m2m100_loads_and_translates_in_order(torch_translator, tiny_m2m100):
    t = torch_translator
    assert t.backend == "torch" and t.source_lang == "fa" and t.target_token == "__en__"
    assert t.model == f"{tiny_m2m100}@{model_fingerprint(tiny_m2m100)} (torch)"
    lines = [Line(0.0, 1.0, text="raw", text_fa=text) for text in FARSI] + [Line(5, 6, text="", text_fa="")]
    t.translate(lines, None)
    english = [line.text_en for line in lines]
    assert all(english[:-1]) and english[-1] == ""
    # Language codes and special tokens never reach the English.
    assert not any("__" in e or "</s>" in e for e in english)
    # Each line gets its own translation: the same as translating it alone (batching and
    # padding change nothing; batch_size 4 puts the five lines in two batches).
    alone = TransformersTranslator(str(tiny_m2m100), opts(backend="torch", batch_size=1, cache_lines=0))
    assert english[:-1] == [alone.translate_texts([text])[0] for text in FARSI]


def test_raw_text_is_used_when_there_is_no_normalised_farsi(torch_translator):
    line = Line(0, 1, text=FARSI[1])
    torch_translator.translate([line], None)
    assert line.text_en == torch_translator.translate_texts([FARSI[1]])[0]


def test_identical_lines_are_translated_once(tiny_m2m100):
    t = TransformersTranslator(str(tiny_m2m100), opts(backend="torch", batch_size=8))
    seen: list[int] = []
    real = t._translate_batch
    t._translate_batch = lambda batch: (seen.append(len(batch)), real(batch))[1]
    texts = [FARSI[0], FARSI[1], FARSI[0], FARSI[1], FARSI[2]]
    first = t.translate_texts(texts)
    assert seen == [3]  # three distinct lines, one batch
    assert first[0] == first[2] and first[1] == first[3]
    assert t.translate_texts([FARSI[1], FARSI[0]]) == [first[1], first[0]]
    assert seen == [3]  # all from the cache


def test_cache_is_bounded(tiny_m2m100):
    t = TransformersTranslator(str(tiny_m2m100), opts(backend="torch", cache_lines=2))
    t.translate_texts(FARSI[:4])
    assert len(t._cache.data) == 2 and set(t._cache.data) < set(FARSI[:4])


def test_length_limits_bound_input_and_output(tiny_m2m100):
    t = TransformersTranslator(
        str(tiny_m2m100), opts(backend="torch", max_input_tokens=8, max_new_tokens=5, no_repeat_ngram_size=0)
    )
    looped = " ".join([FARSI[0]] * 40)  # a recognition loop
    assert len(t._encode(looped)) == 8
    produced: list[int] = []
    real_decode = t._decode
    t._decode = lambda ids: (produced.append(len(ids)), real_decode(ids))[1]
    t.translate_texts([looped])
    # decoder start + target language + at most max_new_tokens new tokens (the random model
    # never says end-of-sentence, so without the limit it would run to max_position_embeddings)
    assert produced == [2 + 5]


def test_model_version_changes_with_the_model(tmp_path, tiny_m2m100):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_m2m100, copy)
    before = model_fingerprint(copy)
    assert before == model_fingerprint(tiny_m2m100)
    config = json.loads((copy / "config.json").read_text())
    config["dropout"] = 0.3
    (copy / "config.json").write_text(json.dumps(config))
    assert model_fingerprint(copy) != before


def test_ctranslate2_path_converts_once_and_matches_torch(tmp_path, tiny_m2m100, torch_translator):
    options = opts(backend="ctranslate2", batch_size=4, cache_dir=str(tmp_path / "cache"))
    ct2 = TransformersTranslator(str(tiny_m2m100), options)
    assert ct2.backend == "ctranslate2"
    assert (ct2.ct2_dir / "model.bin").is_file()
    assert ct2.ct2_dir.parent == tmp_path / "cache" / "mt-ct2"
    assert ct2.model.endswith("(ctranslate2)") and model_fingerprint(tiny_m2m100) in ct2.model
    assert ct2.translate_texts(FARSI) == torch_translator.translate_texts(FARSI)
    stamp = (ct2.ct2_dir / "model.bin").stat().st_mtime_ns
    again = TransformersTranslator(str(tiny_m2m100), options)
    assert (again.ct2_dir / "model.bin").stat().st_mtime_ns == stamp  # reused, not converted again
    # A converted directory can also be given directly.
    direct = TransformersTranslator(str(ct2.ct2_dir), opts(backend="torch"))
    assert direct.backend == "ctranslate2"
    assert direct.translate_texts(FARSI[:2]) == torch_translator.translate_texts(FARSI[:2])


def test_unloadable_model_falls_back_with_one_line(tmp_path):
    missing = tmp_path / "no-such-model"
    said: list[str] = []
    t = make_translator("transformers", None, mt_model=str(missing), fallback="none", warn=said.append)
    assert isinstance(t, NoTranslator)
    assert len(said) == 1 and "\n" not in said[0]
    assert str(missing) in said[0] and "no such directory" in said[0] and "'none'" in said[0]
    assert t.fallback_reason in said[0]
    with pytest.raises(MTModelError, match="no such directory"):
        make_translator("transformers", None, mt_model=str(missing), fallback="error")
    # The whisper fallback needs an engine; without one the error says so.
    with pytest.raises(MTModelError, match="needs a Whisper engine"):
        make_translator("transformers", None, mt_model=str(missing), fallback="whisper")


def test_directory_that_is_not_a_model_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MTModelError, match="no config.json"):
        make_translator("transformers", mt_model=str(tmp_path), fallback="error")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(MTModelError, match="cannot load its tokenizer"):
        make_translator("transformers", mt_model=str(tmp_path), fallback="error")


def test_make_translator_names(tiny_m2m100):
    assert isinstance(make_translator("none"), NoTranslator)
    with pytest.raises(ValueError, match="whisper translator needs a Whisper engine"):
        make_translator("whisper")
    with pytest.raises(ValueError, match="unknown translator 'deepl'"):
        make_translator("deepl")
    with pytest.raises(ValueError, match="unknown MT fallback"):
        make_translator("transformers", mt_model=str(tiny_m2m100), fallback="maybe")
    with pytest.raises(MTModelError, match="needs an MT model"):
        make_translator("transformers", fallback="error")
    t = make_translator("transformers", mt_model=str(tiny_m2m100), options=opts(backend="torch"))
    assert isinstance(t, TransformersTranslator)


def _store_with_lines(db: Path, recordings: dict[str, list[tuple[float, float, str]]]) -> list[int]:
    ids = []
    with Store(db, CREATE) as store:
        for path, rows in recordings.items():
            txs = [Transmission(i, start, end) for i, (start, end, _) in enumerate(rows)]
            lines = [Line(start, end, text=text, text_fa=text, transmission_idx=i, text_en="old")
                     for i, (start, end, text) in enumerate(rows)]
            ids.append(store.save_recording(
                RecordingFacts(path=path, sha256=path), txs, lines, [[] for _ in lines], run_id=None,
                engine="faster-whisper", model="base", translator="whisper", translator_model="base",
                lexicon_version="v1",
            ))
    return ids


def test_retranslate_rewrites_stored_lines(tmp_path, torch_translator):
    db = tmp_path / "store.db"
    first, second = _store_with_lines(db, {
        "/rec/a.wav": [(0.0, 2.0, FARSI[0]), (3.0, 4.0, FARSI[1])],
        "/rec/b.wav": [(1.0, 2.0, FARSI[2])],
    })
    with Store(db, CREATE) as store:
        assert retranslate(store, torch_translator, recording_id=second) == 1
        rows = {r["text_fa"]: r for r in store.iter_lines()}
        assert rows[FARSI[0]]["text_en"] == "old"  # the other recording is untouched
        assert rows[FARSI[2]]["translator"] == "transformers"
        assert retranslate(store, torch_translator) == 3
        expected = torch_translator.translate_texts(FARSI[:3])
        for text, english in zip(FARSI[:3], expected):
            row = next(r for r in store.iter_lines() if r["text_fa"] == text)
            assert row["text_en"] == english
            assert (row["translator"], row["translator_model"]) == ("transformers", torch_translator.model)
            # Text and scores stay as they were.
            assert row["text_fa_raw"] == text and row["engine"] == "faster-whisper"
        assert retranslate(store, NoTranslator()) == 3
        assert all(r["text_en"] is None and r["translator"] == "none" for r in store.iter_lines())


def test_whisper_translate_path_on_a_sample(tmp_path, embedded_model_dir, manifest):
    """Whisper's own translate task, through retranslate: the recording is decoded again from
    its stored path and each stored line's audio is translated."""
    from intercept.engines import TranscribeOptions, load_engine

    name = "bird_or_fox.ogg"
    wanted = manifest["recordings"][name]["transmissions"][2]  # "... a bird or a fox."
    db = tmp_path / "store.db"
    _store_with_lines(db, {str(ROOT / "audio_samples" / name): [(wanted["start"], wanted["end"], wanted["text_fa"])]})
    # The default options (beam 5): a greedy translate decode of this line with 10 s of
    # context (translate_context_s) stops after one word ("The").
    engine = load_engine("faster-whisper", str(embedded_model_dir), "whisper-base (embedded)",
                         TranscribeOptions())
    # The default fallback of an MT model that cannot be loaded is this same Whisper path.
    said: list[str] = []
    translator = make_translator("transformers", engine, mt_model=str(tmp_path / "missing"), warn=said.append)
    assert isinstance(translator, WhisperTranslator) and "'whisper' instead" in said[0]
    with Store(db, CREATE) as store:
        assert retranslate(store, translator) == 1
        (row,) = list(store.iter_lines())
    english = row["text_en"] or ""
    assert english != "old" and sum(ch.isascii() and ch.isalpha() for ch in english) >= 5, english
    assert (row["translator"], row["translator_model"]) == ("whisper", "whisper-base (embedded)")


def _no_gpu(monkeypatch):
    """This machine's view whatever it has: CTranslate2 and a CUDA build of torch see no GPU."""
    import ctranslate2
    import torch

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 0)
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("backend, reason", [
    ("ctranslate2", "CTranslate2 .* sees no usable CUDA GPU"),
    ("torch", r"PyTorch \(CUDA 12.8\) sees no CUDA GPU"),
])
def test_mt_on_cuda_without_a_gpu_is_one_line_with_the_way_out(monkeypatch, tmp_path, tiny_m2m100, backend, reason):
    _no_gpu(monkeypatch)
    with pytest.raises(MTModelError, match="MT device cuda: the MT model cannot use a GPU here: " + reason) as caught:
        TransformersTranslator(str(tiny_m2m100), opts(backend=backend, device="cuda", cache_dir=str(tmp_path)))
    message = str(caught.value)
    assert "--mt-device cpu" in message and "\n" not in message
    # Under the fallback policy it is the one warning line, and the run goes on.
    said: list[str] = []
    t = make_translator("transformers", mt_model=str(tiny_m2m100), fallback="none",
                        options=opts(backend=backend, device="cuda", cache_dir=str(tmp_path)), warn=said.append)
    assert isinstance(t, NoTranslator) and said == [f"{message}; translating with 'none' instead"]


def test_mt_auto_device_without_a_gpu_translates_on_the_cpu(monkeypatch, tiny_m2m100, torch_translator):
    _no_gpu(monkeypatch)
    t = TransformersTranslator(str(tiny_m2m100), opts(backend="torch", device="auto", batch_size=4))
    assert t.device == "cpu"
    assert t.translate_texts(FARSI[:2]) == torch_translator.translate_texts(FARSI[:2])


def test_mt_follows_the_recogniser_device_unless_set(monkeypatch):
    from intercept import components, pipeline, translate
    from intercept.config import RunOptions

    seen: list[MTOptions] = []
    monkeypatch.setattr(components, "load_engine", lambda options: (object(), "scripted", "scripted"))
    monkeypatch.setattr(translate, "make_translator",
                        lambda name, engine, **kwargs: seen.append(kwargs["options"]) or NoTranslator())
    options = RunOptions(translator="none")
    options.transcribe.device = "cuda"
    pipeline.Pipeline(options)
    options.mt.device = "cpu"
    pipeline.Pipeline(options)
    assert [o.device for o in seen] == ["cuda", "cpu"]
    assert options.mt.device == "cpu"  # the run's own options are not rewritten


def test_translate_command_mt_device_cuda_without_a_gpu_exits_2(monkeypatch, tmp_path, tiny_m2m100):
    from click.testing import CliRunner

    from intercept.cli import cli

    _no_gpu(monkeypatch)
    db = tmp_path / "store.db"
    _store_with_lines(db, {"/rec/a.wav": [(0.0, 2.0, FARSI[0])]})
    result = CliRunner().invoke(cli, ["translate", "--db", str(db), "--mt-model", str(tiny_m2m100),
                                      "--mt-backend", "torch", "--mt-device", "cuda"])
    assert result.exit_code == 2
    assert "MT device cuda: the MT model cannot use a GPU here" in result.output
    with Store(db, CREATE) as store:
        assert [row["text_en"] for row in store.db["lines"].rows] == ["old"]  # nothing rewritten
