"""The three engines on the same weights: faster-whisper on the embedded CTranslate2 model,
openai-whisper on its converted .pt, transformers on its converted directory. Greedy decoding
of the same transmission must give (nearly) the same text."""
from __future__ import annotations

import dataclasses
import itertools
import re
import unicodedata

import pytest

from intercept.engines import ENGINES, TranscribeOptions, load_engine
from intercept.models import ModelError
from intercept.types import Transmission

torch = pytest.importorskip("torch")
pytest.importorskip("whisper")
pytest.importorskip("transformers")

from test_convert import SAMPLES, converted_dir  # noqa: E402  (shares the session's conversion)

GREEDY = dict(language="fa", beam_size=1, temperatures=(0.0,), compute_type="float32")


def greedy_options() -> TranscribeOptions:
    options = TranscribeOptions(**GREEDY)
    if hasattr(options, "pack"):  # packing (another engine feature) would change the windows
        options.pack = False
    return options


def normalised(text: str) -> str:
    """Letters only, Arabic/Persian look-alikes unified, so CER measures recognition."""
    text = unicodedata.normalize("NFKC", text).replace("ي", "ی").replace("ك", "ک")
    return re.sub(r"[\W_]+", "", text)


def cer(a: str, b: str) -> float:
    from rapidfuzz.distance import Levenshtein

    a, b = normalised(a), normalised(b)
    return Levenshtein.distance(a, b) / max(len(a), len(b), 1)


@pytest.fixture(scope="session")
def engines(tmp_path_factory, embedded_model_dir):
    paths = converted_dir(tmp_path_factory, embedded_model_dir)
    paths["faster-whisper"] = embedded_model_dir
    return {name: load_engine(name, str(paths[name]), "base", greedy_options()) for name in ENGINES}


@pytest.fixture(scope="session")
def bird_or_fox(manifest):
    from intercept.audio import decode

    spoken = manifest["recordings"]["bird_or_fox.ogg"]["transmissions"][2]  # "... پرنده است یا روباه"
    tx = Transmission(idx=2, start=spoken["start"] - 0.3, end=spoken["end"] + 0.3)
    return decode(str(SAMPLES / "bird_or_fox.ogg")), tx


def test_three_engines_agree_on_the_same_weights(engines, bird_or_fox):
    audio, tx = bird_or_fox
    texts = {}
    for name, engine in engines.items():
        lines = engine.transcribe(audio.samples, [tx], audio.sample_rate)
        assert lines, f"{name} heard nothing"
        for line in lines:
            assert tx.start <= line.start <= line.end <= tx.end and line.transmission_idx == tx.idx
            assert line.avg_logprob is not None and line.avg_logprob < 0
        texts[name] = " ".join(line.text for line in lines)
    assert all(len(normalised(t)) >= 10 for t in texts.values()), texts
    for a, b in itertools.combinations(texts, 2):
        assert cer(texts[a], texts[b]) <= 0.1, (a, b, texts)


def _with_options(engine, **changes):
    """The loaded engine (same model) with other decoding options."""
    from dataclasses import replace

    copy = object.__new__(type(engine))
    copy.__dict__.update(engine.__dict__)
    copy.options = replace(engine.options, **changes)
    return copy


@pytest.mark.parametrize("name", ENGINES)
def test_every_engine_gives_words_and_alternatives_or_says_unknown(engines, bird_or_fox, name):
    """Beam 5: each line's words (probabilities in [0, 1], times inside the line) and the
    beam's N-best (the first is the line's own text); None where the library cannot give it
    (transformers: no N-best of one beam, no token scores under beam search)."""
    audio, tx = bird_or_fox
    engine = _with_options(engines[name], beam_size=5)
    lines = engine.transcribe(audio.samples, [tx], audio.sample_rate)
    assert lines, f"{name} heard nothing"
    for line in lines:
        if name == "transformers":
            assert line.words is None and line.alternatives is None
            assert line.confidence is None or 0 <= line.confidence <= 1
            continue
        assert line.words, (name, line)
        for word in line.words:
            assert word.text.strip() and 0.0 <= word.probability <= 1.0, word
            assert line.start <= word.start <= word.end <= line.end, (word, line)
        assert line.confidence == pytest.approx(sum(w.probability for w in line.words) / len(line.words), abs=1e-3)
        assert line.alternatives and line.alternatives[0].text == line.text, (name, line.alternatives)
        assert len(line.alternatives) > 1, line.alternatives
        assert line.alternatives[0].avg_logprob == pytest.approx(line.avg_logprob, abs=1e-3)
        assert all(h.avg_logprob < 0 and h.tokens > 0 for h in line.alternatives)
    if name != "transformers":
        # Off means off: no words, no alternatives, confidence from the line's log-probability.
        off = _with_options(engines[name], beam_size=5, alternatives=0, word_evidence=False)
        bare = off.transcribe(audio.samples, [tx], audio.sample_rate)
        assert [line.text for line in bare] == [line.text for line in lines]
        assert all(line.words is None and line.alternatives is None for line in bare)


def test_engines_are_registered():
    assert set(ENGINES) == {"faster-whisper", "openai-whisper", "transformers"}
    with pytest.raises(ValueError, match="unknown engine 'whisperx'"):
        load_engine("whisperx", "base", "base", TranscribeOptions())


@pytest.mark.parametrize(
    "engine, make_path, expected",
    [
        ("openai-whisper", lambda d: "no-such-model", "unknown openai-whisper model 'no-such-model'"),
        ("openai-whisper", lambda d: d / "broken.pt", "is not an openai-whisper checkpoint"),
        ("openai-whisper", lambda d: d, "model.bin is missing"),
        ("transformers", lambda d: d, "is not a loadable transformers model"),
        ("transformers", lambda d: d / "broken.pt", "is a file"),
    ],
)
def test_missing_or_bad_model_is_one_clear_line(tmp_path, engine, make_path, expected):
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError) as info:
        load_engine(engine, str(make_path(tmp_path)), "x", TranscribeOptions())
    assert expected in str(info.value) and "\n" not in str(info.value)


def test_ctc_model_gives_one_line_per_transmission(tmp_path):
    """A tiny wav2vec2 CTC model whose output layer always picks the letter 'a': the engine's
    CTC path must load it from a directory and return the collapsed text inside the transmission."""
    import json

    import numpy as np
    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC,
                              Wav2Vec2Processor)

    vocab = {"<pad>": 0, "<unk>": 1, "|": 2, "a": 3, "b": 4}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    tokenizer = Wav2Vec2CTCTokenizer(str(tmp_path / "vocab.json"), pad_token="<pad>", unk_token="<unk>",
                                     word_delimiter_token="|")
    processor = Wav2Vec2Processor(feature_extractor=Wav2Vec2FeatureExtractor(), tokenizer=tokenizer)
    config = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                            intermediate_size=32, conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 4),
                            num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, pad_token_id=0,
                            architectures=["Wav2Vec2ForCTC"])
    model = Wav2Vec2ForCTC(config)
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 10.0, 0.0]))
    model.save_pretrained(tmp_path / "ctc")
    processor.save_pretrained(tmp_path / "ctc")

    engine = load_engine("transformers", str(tmp_path / "ctc"), "tiny-ctc", TranscribeOptions())
    samples = np.random.default_rng(0).normal(scale=0.1, size=16000 * 3).astype(np.float32)
    lines = engine.transcribe(samples, [Transmission(idx=4, start=0.5, end=2.0)], 16000)
    assert [(l.start, l.end, l.text, l.transmission_idx) for l in lines] == [(0.5, 2.0, "a", 4)]
    assert lines[0].avg_logprob > -0.01
    with pytest.raises(ValueError, match="cannot translate"):
        engine.translate_audio(samples, 0.5, 2.0)
    # No decoder to score a given text with: the acoustic check is unknown, never guessed.
    assert engine.score_texts(samples, 0.5, 2.0, ["a", "b"], 16000) == [None, None]


LOOP = "که " * 40


def _scripted_transformers(engines, answers, options):
    """The loaded transformers engine with other options and its generate step scripted."""
    engine = object.__new__(type(engines["transformers"]))
    engine.__dict__.update(engines["transformers"].__dict__)
    engine.options = options
    requests = []

    def generate(features, task, max_new_tokens, kwargs):
        requests.append(kwargs)
        return [{"start": 0.0, "end": 2.0, "text": answers[len(requests) - 1], "avg_logprob": -0.5}]

    engine._generate = generate
    return engine, requests


def test_transformers_engine_retries_a_loop_deterministically(engines):
    import numpy as np

    samples, txs = np.zeros(16000 * 3, dtype=np.float32), [Transmission(0, 0.0, 3.0)]
    engine, requests = _scripted_transformers(engines, [LOOP, "دریافت شد تمام"], TranscribeOptions())
    assert [line.text for line in engine.transcribe(samples, txs)] == ["دریافت شد تمام"]
    assert requests[0]["do_sample"] is False and "no_repeat_ngram_size" not in requests[0]
    assert requests[1]["do_sample"] is False
    assert requests[1]["no_repeat_ngram_size"] == TranscribeOptions().loop_retry_ngram > 0
    # A retry that repeats as much is not kept; clean text is not retried; off means off.
    engine, requests = _scripted_transformers(engines, [LOOP, LOOP + LOOP], TranscribeOptions())
    assert [line.text for line in engine.transcribe(samples, txs)] == [LOOP.strip()]
    engine, requests = _scripted_transformers(engines, ["دریافت شد"], TranscribeOptions())
    engine.transcribe(samples, txs)
    assert len(requests) == 1
    engine, requests = _scripted_transformers(engines, [LOOP], TranscribeOptions(loop_retry_ngram=0))
    engine.transcribe(samples, txs)
    assert len(requests) == 1
    # With a temperature ladder the retry drops the ladder's sampling settings.
    ladder = TranscribeOptions(temperatures=(0.0, 0.4, 0.8))
    engine, requests = _scripted_transformers(engines, [LOOP, "دریافت شد"], ladder)
    engine.transcribe(samples, txs)
    assert "temperature" in requests[0] and "temperature" not in requests[1]


# -- devices -------------------------------------------------------------------------------
# These run on any machine: the GPU's presence is set through the two libraries' own probes.
# scripts/check_cuda.py runs the engines on a real GPU.

from intercept import engines as engines_module  # noqa: E402


def _gpu_seen(monkeypatch, ctranslate2_count: int, torch_cuda: bool):
    import ctranslate2

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: ctranslate2_count)
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: torch_cuda)


@pytest.mark.parametrize("backend", ["ctranslate2", "torch"])
def test_auto_device_follows_what_the_library_sees(monkeypatch, backend):
    _gpu_seen(monkeypatch, 1, True)
    assert engines_module.resolve_device("auto", "x", backend) == "cuda"
    assert engines_module.resolve_device("cuda", "x", backend) == "cuda"
    assert engines_module.resolve_device("cpu", "x", backend) == "cpu"
    _gpu_seen(monkeypatch, 0, False)
    assert engines_module.resolve_device("auto", "x", backend) == "cpu"


@pytest.mark.parametrize("backend, reason", [
    ("ctranslate2", "CTranslate2 .* sees no usable CUDA GPU"),
    ("torch", r"PyTorch \(CUDA 12.8\) sees no CUDA GPU"),
])
def test_cuda_without_a_gpu_is_one_line_naming_the_engine(monkeypatch, backend, reason):
    _gpu_seen(monkeypatch, 0, False)
    with pytest.raises(ModelError, match="--device cuda: the faster-whisper engine cannot use a GPU here: " + reason) as caught:
        engines_module.resolve_device("cuda", "faster-whisper", backend)
    assert "\n" not in str(caught.value)


def test_cpu_only_torch_build_is_named(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(ModelError, match=r"CPU-only build; install a CUDA build of torch"):
        engines_module.resolve_device("cuda", "openai-whisper", "torch")


def test_unknown_device_is_refused():
    with pytest.raises(ValueError, match="unknown device 'gpu' .*cpu, cuda, auto"):
        engines_module.resolve_device("gpu", "faster-whisper", "ctranslate2")


def test_faster_whisper_cuda_failure_names_the_libraries(monkeypatch, embedded_model_dir):
    """CTranslate2 reports a GPU but cannot run on it (here: no GPU at all behind the faked
    count; on a real machine typically libcublas.so.12 missing): one line with the way out."""
    import ctranslate2
    import faster_whisper

    monkeypatch.setattr(ctranslate2, "get_cuda_device_count", lambda: 1)

    def broken_model(*args, **kwargs):
        assert kwargs["device"] == "cuda"
        raise RuntimeError("Library libcublas.so.12 is not found or cannot be loaded")

    monkeypatch.setattr(faster_whisper, "WhisperModel", broken_model)
    options = TranscribeOptions(device="cuda")
    with pytest.raises(ModelError) as caught:
        load_engine("faster-whisper", str(embedded_model_dir), "base", options)
    message = str(caught.value)
    assert "libcublas.so.12 is not found" in message and "nvidia-cublas-cu12" in message
    assert "\n" not in message


def test_transformers_engine_caps_new_tokens_by_duration(engines, bird_or_fox):
    """The loop guard's token cap (passed to transformers as max_length, which Whisper's
    generate counts after the prompt) bites at the set number of new tokens."""
    from dataclasses import replace

    audio, tx = bird_or_fox
    engine = engines["transformers"]
    tokenizer = engine.processor.tokenizer
    full = " ".join(line.text for line in engine.transcribe(audio.samples, [tx], audio.sample_rate))
    kept = engine.options
    try:
        engine.options = replace(kept, tokens_per_second=0.0, loop_retry_ngram=0)  # cap: 20 tokens
        capped = " ".join(line.text for line in engine.transcribe(audio.samples, [tx], audio.sample_rate))
    finally:
        engine.options = kept
    full_tokens = len(tokenizer.encode(full, add_special_tokens=False))
    capped_tokens = len(tokenizer.encode(capped, add_special_tokens=False))
    assert full_tokens > 20, full
    assert 0 < capped_tokens <= 20 and full.replace(" ", "").startswith(capped.replace(" ", "")[:8]), (full, capped)


# -- openai-whisper's loop retry ------------------------------------------------------------

def test_repeat_ban_forbids_the_token_that_would_repeat_an_ngram():
    from intercept.engines.openai_whisper import RepeatBan

    prompt = [50258, 50300, 50359]  # sot, language, task: never counted
    tokens = torch.tensor([prompt + [10, 11, 12, 10, 11], prompt + [10, 11, 50400, 10, 11]])
    logits = torch.zeros(2, 50500)
    RepeatBan(sample_begin=3, text_end=50257, ngram=3).apply(logits, tokens)
    assert logits[0, 12] == -float("inf") and torch.isfinite(logits[0, :12]).all()
    assert torch.isfinite(logits[1]).all(), "a timestamp token (>= text_end) is never banned"
    assert torch.isfinite(logits[0, 13:]).all()

    logits = torch.tensor([[2.0, -2.0, 2.0, 4.0]])
    RepeatBan(sample_begin=0, text_end=3, penalty=2.0).apply(logits, torch.tensor([[0, 1, 3]]))
    assert logits.tolist() == [[1.0, -4.0, 2.0, 4.0]]  # written text tokens 0 and 1 penalised, 3 is special


def test_openai_whisper_engine_retries_a_loop_without_sampling(engines, manifest):
    """A transmission of audio_samples/ on which Whisper base loops at temperature 0: the
    retry (no repeated 3-gram) ends the loop; the model's own decode is back afterwards."""
    from dataclasses import replace

    from intercept.audio import decode
    from intercept.engines.core import Decoder, worst_ratio as _worst_ratio

    spoken = manifest["recordings"]["plain_traffic.wav"]["transmissions"][0]
    tx = Transmission(idx=0, start=max(0.0, spoken["start"] - 0.3), end=spoken["end"] + 0.3)
    samples = decode(str(SAMPLES / "plain_traffic.wav")).samples
    chunk = samples[int(tx.start * 16000):int(tx.end * 16000)]
    engine = object.__new__(type(engines["openai-whisper"]))
    engine.__dict__.update(engines["openai-whisper"].__dict__)
    # Beam 2 loops there as beam 5 does, at under half the decoding time (greedy does not loop).
    engine.options = replace(engines["openai-whisper"].options, beam_size=2, loop_retry_ngram=0)
    looping = Decoder(engine, engine.options).decode(chunk, "transcribe").segments
    assert _worst_ratio(looping) > 2.4, looping
    engine.options = replace(engine.options, loop_retry_ngram=3)
    retried = Decoder(engine, engine.options).decode(chunk, "transcribe").segments
    assert 0 < _worst_ratio(retried) <= 2.4, retried
    assert "decode" not in vars(engine.model)


def test_every_engine_scores_given_texts_alike_on_the_same_weights(engines, bird_or_fox, embedded_model_dir):
    """score_texts (the acoustic check's question, intercept.acoustic): the log-probability of
    given texts as the transcript of a span (mean per token, and tokens). The engine's own line
    is far likelier than an unrelated sentence; the three engines agree within a nat or two
    (their mel front ends differ slightly); an empty text is not scored. All see Whisper's 30 s
    input here (faster-whisper's shorter default context is tested below)."""
    audio, tx = bird_or_fox
    line = engines["faster-whisper"].transcribe(audio.samples, [tx], audio.sample_rate)[0]
    words = line.text.split()
    texts = [line.text, " ".join(words[:-1] + ["پرنده"]), "سلام بر شما دوستان عزیز", ""]
    scores = {}
    for name, engine in engines.items():
        if name == "faster-whisper":
            engine = load_engine(name, str(embedded_model_dir), "base",
                                 dataclasses.replace(greedy_options(), score_context_s=None))
        found = engine.score_texts(audio.samples, tx.start, tx.end, texts, audio.sample_rate)
        assert [h.text for h in found[:3]] == texts[:3] and all(h.tokens > 0 for h in found[:3]), (name, found)
        scores[name] = [h.avg_logprob * h.tokens for h in found[:3]] + found[3:]
    for name, found in scores.items():
        assert found[3] is None, name
        assert all(value < 0 for value in found[:3]), (name, found)
        assert found[0] > found[2] + 10, (name, found)
    for a, b in itertools.combinations(scores, 2):
        for x, y in zip(scores[a][:3], scores[b][:3]):
            assert abs(x - y) <= 1.0 + 0.05 * abs(x), (a, b, scores)


def test_a_shorter_scoring_context_keeps_the_acoustic_margins(engines, bird_or_fox, embedded_model_dir):
    """TranscribeOptions.score_context_s (faster-whisper): the acoustic check encodes a line's
    audio padded to 10 s instead of 30 s (a third of the encoder's time). The margins the check
    takes from the scores (intercept.acoustic: a substituted text against the line's own) stay
    within a couple of nats of the 30 s ones and in the same order; the evaluation at real
    prevalence measured no flag moving across the queue threshold (docs/benchmarks.md)."""
    audio, tx = bird_or_fox
    short = engines["faster-whisper"]
    assert short.options.score_context_s == 10.0
    full = load_engine("faster-whisper", str(embedded_model_dir), "base",
                       dataclasses.replace(short.options, score_context_s=None))
    line = short.transcribe(audio.samples, [tx], audio.sample_rate)[0]
    words = line.text.split()
    texts = [line.text, " ".join(words[:-1] + ["پرنده"]), " ".join(["روباه"] + words[1:]),
             "سلام بر شما دوستان عزیز"]

    def margins(engine):
        base, *others = engine.score_texts(audio.samples, tx.start, tx.end, texts, audio.sample_rate)
        return [h.tokens * (h.avg_logprob - base.avg_logprob) for h in others]

    cut, whole = margins(short), margins(full)
    assert cut != whole  # the context did change what the encoder saw
    assert all(abs(a - b) <= 2.0 + 0.1 * abs(b) for a, b in zip(cut, whole)), (cut, whole)
    assert sorted(range(3), key=cut.__getitem__) == sorted(range(3), key=whole.__getitem__), (cut, whole)
