"""intercept adapt and export --format corpus: corrected lines -> corpus -> adapted model -> run.

A tiny Whisper (random weights, one layer each side, d_model 64, the embedded model's real
tokenizer) stands in for the base, so the whole loop runs in seconds: its text is garbage,
and the tests check the loop, not accuracy (that is scripts/bench_adapt.py's job). The
embedded base itself is trained for one step on two clips, and its loss must fall.
"""
from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from intercept.cli import cli
from intercept.store import CREATE, RecordingFacts, Store
from intercept.types import Line, Transmission

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "audio_samples"


def _manifest() -> dict:
    return json.loads((SAMPLES / "manifest.json").read_text(encoding="utf-8"))["recordings"]


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, embedded_model_dir):
    """A CTranslate2 Whisper of random weights with the embedded model's vocabulary."""
    import torch
    from transformers import WhisperForConditionalGeneration

    from intercept.adapt import to_ctranslate2
    from intercept.convert import _hf_processor, hf_config, read_ct2_whisper

    base = read_ct2_whisper(embedded_model_dir)
    config, generation = hf_config(base)
    config.update(dict(d_model=64, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                       decoder_attention_heads=2, encoder_ffn_dim=128, decoder_ffn_dim=128))
    generation.alignment_heads = [[0, 0], [0, 1]]
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = generation
    out = tmp_path_factory.mktemp("tiny") / "tiny-ct2"
    return to_ctranslate2(model, _hf_processor(base), Path(embedded_model_dir), out, quantization=None)


def _revise(db_path: Path, line_id: int, text_fa: str, reviewer: str = "maryam") -> None:
    """A reviewer's correction as the corrections work stores it (line_revisions), the table
    made here only when that work's migration has not made it already."""
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("""CREATE TABLE IF NOT EXISTS line_revisions (
            id INTEGER PRIMARY KEY, line_id INTEGER NOT NULL REFERENCES lines(id), text_fa TEXT NOT NULL,
            text_en TEXT, reviewer TEXT NOT NULL, at TEXT NOT NULL, replaces INTEGER REFERENCES line_revisions(id))""")
        previous = conn.execute("SELECT MAX(id) FROM line_revisions WHERE line_id = ?", [line_id]).fetchone()[0]
        conn.execute("INSERT INTO line_revisions (line_id, text_fa, text_en, reviewer, at, replaces) "
                     "VALUES (?, ?, NULL, ?, datetime('now'), ?)", [line_id, text_fa, reviewer, previous])
    conn.close()


@pytest.fixture
def corrected_store(tmp_path):
    """A store of two real recordings from audio_samples/ with the recogniser's (wrong) text on
    every transmission; returns (db path, {(file, n): line id})."""
    db = tmp_path / "store.db"
    ids = {}
    with Store(db, CREATE) as store:
        for name in ("plain_traffic.wav", "session_long.mp3"):
            txs = _manifest()[name]["transmissions"][:3]
            lines = [Line(start=t["start"], end=t["end"], text="متن اشتباه", transmission_idx=i,
                          text_fa="متن اشتباه", text_en="wrong") for i, t in enumerate(txs)]
            path = SAMPLES / name
            rec = store.save_recording(
                RecordingFacts(path=str(path), sha256=name.ljust(64, "0")[:64], duration_s=140.0, format="wav",
                               size_bytes=path.stat().st_size),
                [Transmission(i, t["start"], t["end"]) for i, t in enumerate(txs)], lines, [[] for _ in lines],
                run_id=None, engine="faster-whisper", model="base", translator="whisper", lexicon_version="v1")
            for row in store.rows("SELECT id, start_s FROM lines WHERE recording_id = ? ORDER BY start_s", [rec]):
                ids[(name, len([k for k in ids if k[0] == name]))] = row["id"]
    return db, ids


def _read_metadata(folder: Path) -> list[dict]:
    with open(folder / "metadata.tsv", encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_corpus_export_holds_only_corrected_lines_with_the_latest_revision(corrected_store, tmp_path):
    db, ids = corrected_store
    manifest = _manifest()
    out = tmp_path / "corpus"
    result = CliRunner().invoke(cli, ["export", str(db), "--format", "corpus", "-o", str(out)])
    assert result.exit_code != 0 and "no corrected line" in result.output, "machine text is not a label"

    _revise(db, ids[("plain_traffic.wav", 0)], "اول غلط")
    _revise(db, ids[("plain_traffic.wav", 0)], manifest["plain_traffic.wav"]["transmissions"][0]["text_fa"])
    _revise(db, ids[("session_long.mp3", 1)], manifest["session_long.mp3"]["transmissions"][1]["text_fa"])
    result = CliRunner().invoke(cli, ["export", str(db), "--format", "corpus", "-o", str(out)])
    assert result.exit_code == 0, result.output
    rows = _read_metadata(out)
    assert [r["line_id"] for r in rows] == [str(ids[("plain_traffic.wav", 0)]), str(ids[("session_long.mp3", 1)])]
    assert rows[0]["transcript"] == manifest["plain_traffic.wav"]["transmissions"][0]["text_fa"]
    assert rows[0]["reviewer"] == "maryam"
    assert rows[0]["recording"] != rows[1]["recording"]
    from intercept.evaluate import read_corpus
    from intercept.audio import decode

    items = read_corpus(out)  # the format of ../shared/eval/
    for row, item in zip(rows, items):
        # the label is the transcript alone, never the speaker, voice or recording columns after it
        assert item.transcript == row["transcript"]
        audio = decode(str(item.path))
        assert abs(audio.duration - float(row["duration_s"])) < 0.02
        assert audio.duration > 2.0 and np.abs(audio.samples).max() > 0.05, "the clip holds the line's speech"


def test_adapt_export_convert_and_run_with_the_adapted_model(corrected_store, tiny_base, tmp_path):
    db, ids = corrected_store
    manifest = _manifest()
    for name in ("plain_traffic.wav", "session_long.mp3"):
        for n in range(3):
            _revise(db, ids[(name, n)], manifest[name]["transmissions"][n]["text_fa"])
    corpus, model_dir = tmp_path / "corpus", tmp_path / "adapted"
    assert CliRunner().invoke(cli, ["export", str(db), "--format", "corpus", "-o", str(corpus)]).exit_code == 0

    result = CliRunner().invoke(cli, ["adapt", str(corpus), "--out", str(model_dir), "--base", str(tiny_base),
                                      "--epochs", "2", "--batch-size", "1", "--held-out-fraction", "0.4",
                                      "--augment-radio", "--force"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    card = json.loads((model_dir / "model_card.json").read_text(encoding="utf-8"))
    for key in ("wer_before", "wer_after", "cer_before", "cer_after"):
        assert isinstance(card[key], float)
    split = card["held_out_split"]
    assert split["held_out_clips"] == 3 and split["train_clips"] == 3, "one whole recording held out"
    assert len(split["held_out_groups"]) == 1 and ":recording:" in split["held_out_groups"][0]
    assert card["base_model"]["sha256"] and card["corpora"][0]["sha256"]
    assert card["settings"]["augment_radio"] and card["settings"]["train"] == "decoder+audio"
    assert len(card["training"]["epoch_losses"]) == 2
    assert (model_dir / "checkpoints" / "epoch-2").is_dir() and not (model_dir / "checkpoints" / "epoch-1").exists()
    assert (model_dir / "model.bin").is_file() and (model_dir / "tokenizer.json").is_file()

    # The written model is, weight by weight, the halfway blend (the default) of the last
    # checkpoint and the base for the decoder, and the checkpoint's for the encoder (the default
    # --blend-encoder 1); the checkpoint keeps the weights as trained.
    from transformers import WhisperForConditionalGeneration

    from intercept.adapt import ENCODER, weights_of
    from intercept.convert import load_hf_whisper

    assert card["settings"]["blend"] == 0.5 and card["settings"]["blend_encoder"] == 1.0
    written = weights_of(load_hf_whisper(model_dir)[0])
    trained = weights_of(WhisperForConditionalGeneration.from_pretrained(model_dir / "checkpoints" / "epoch-2"))
    base = weights_of(load_hf_whisper(tiny_base)[0])
    moved = 0
    for name, tensor in written.items():
        share = 1.0 if name.startswith(ENCODER) else 0.5
        expected = (share * trained[name] + (1 - share) * base[name]).numpy()
        assert np.allclose(tensor.numpy(), expected, rtol=2e-3, atol=1e-4), name  # float16 on disk
        step = np.abs(trained[name].numpy() - base[name].numpy()).mean()
        if step > 10 * np.abs(expected).mean() * 2 ** -11:  # moved well beyond float16's rounding
            moved += 1
            assert np.abs(tensor.numpy() - expected).mean() < 0.3 * step, name
    assert moved > 10, "training moved the decoder's and the encoder's top weights"

    store = tmp_path / "run.db"
    result = CliRunner().invoke(cli, ["run", str(SAMPLES / "short_call.wav"), "--db", str(store),
                                      "--model", str(model_dir), "--no-progress"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    from intercept.models import sha256_of

    with Store(store, "read") as opened:
        runs = opened.rows("SELECT versions FROM runs")
    assert json.loads(runs[0]["versions"])["model_card_sha256"] == sha256_of(model_dir / "model_card.json")


def test_a_model_worse_than_its_base_is_not_written(corrected_store, tiny_base, tmp_path, monkeypatch):
    from intercept import adapt as adapt_module
    from intercept.evaluate import ErrorCounts

    db, ids = corrected_store
    manifest = _manifest()
    for name in ("plain_traffic.wav", "session_long.mp3"):
        _revise(db, ids[(name, 0)], manifest[name]["transmissions"][0]["text_fa"])
    corpus, model_dir = tmp_path / "corpus", tmp_path / "adapted"
    assert CliRunner().invoke(cli, ["export", str(db), "--format", "corpus", "-o", str(corpus)]).exit_code == 0
    # Scores as if the adapted model (scored second) made more errors than the base.
    scores = iter([ErrorCounts(2, 10, 5, 50, 1), ErrorCounts(6, 10, 9, 50, 1)])
    monkeypatch.setattr(adapt_module, "score_model", lambda *a, **k: next(scores))
    result = CliRunner().invoke(cli, ["adapt", str(corpus), "--out", str(model_dir), "--base", str(tiny_base),
                                      "--epochs", "1"])
    assert result.exit_code == 1
    assert "worse than its base" in result.output and "0.200 -> 0.600" in result.output
    assert not (model_dir / "model.bin").exists() and not (model_dir / "model_card.json").exists()


def test_blend_moves_each_weight_once_including_the_tied_embedding(tiny_base):
    import torch

    from intercept.adapt import blend_with_base, weights_of
    from intercept.convert import load_hf_whisper

    model = load_hf_whisper(tiny_base)[0]
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()
    base = weights_of(model)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(1.0)
    blend_with_base(model, base, 0.25)
    for name, tensor in weights_of(model).items():
        if name in dict(model.named_parameters()):
            assert torch.allclose(tensor, base[name] + 0.25, atol=1e-5), name
    assert torch.allclose(model.proj_out.weight, base["model.decoder.embed_tokens.weight"] + 0.25, atol=1e-5)


def test_the_attention_to_the_audio_can_take_its_own_share(tiny_base):
    import torch

    from intercept.adapt import AUDIO_ATTENTION, blend_with_base, weights_of
    from intercept.convert import load_hf_whisper

    model = load_hf_whisper(tiny_base)[0]
    base = weights_of(model)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(1.0)
    blend_with_base(model, base, 0.5, audio_attention=1.0)
    named = dict(model.named_parameters())
    audio = [name for name in named if AUDIO_ATTENTION in name]
    assert audio and all(name.startswith("model.decoder.") for name in audio)
    for name, tensor in weights_of(model).items():
        if name in named:
            share = 1.0 if name in audio else 0.5
            assert torch.allclose(tensor, base[name] + share, atol=1e-5), name


def test_held_out_part_is_whole_groups_and_shares_no_sentence(tmp_path):
    from intercept.adapt import Clip, split_held_out

    clips = [Clip(tmp_path / f"{g}{i}.wav", 1.0, text, "c", f"c:speaker:{g}")
             for g in "abcdef" for i, text in enumerate([f"جمله {g} یک", "جمله مشترک", f"جمله {g} دو"])]
    split = split_held_out(clips, fraction=0.3, seed=3)
    held_groups = {c.group for c in split.held_out}
    assert held_groups == set(split.held_out_groups) and 1 <= len(held_groups) < 6
    assert not held_groups & {c.group for c in split.train}, "a speaker is either held out or trained on"
    assert all(c.transcript != "جمله مشترک" for c in split.train), "no sentence in both parts"
    assert split.dropped_shared_sentences == 6 - len(held_groups)


def test_windows_follow_the_pipelines_packing_and_fit_the_decoder(embedded_model_dir, tmp_path):
    from intercept.adapt import MAX_LABEL_TOKENS, Clip, Labeller, plan_windows, render
    from intercept.convert import _hf_processor, read_ct2_whisper
    from intercept.packing import PackOptions

    labeller = Labeller(_hf_processor(read_ct2_whisper(embedded_model_dir)).tokenizer)
    rng = np.random.default_rng(0)
    clips = [Clip(tmp_path / f"{i}.wav", 4.0, "سلام " * (5 if i % 3 else 60), "c", "c:corpus") for i in range(12)]
    audio = {c.path: rng.standard_normal(4 * 16000).astype(np.float32) * 0.1 for c in clips}
    windows = plan_windows(clips, audio, labeller, PackOptions())
    assert sum(w.clips for w in windows) == 12
    for window in windows:
        assert len(window.labels) <= MAX_LABEL_TOKENS
        assert len(window.audio) <= 29.0 * 16000 + 1
        stamps = [t for t in window.labels if t >= labeller.timestamp_begin]
        assert len(stamps) == 2 * window.clips
        assert stamps[0] == labeller.timestamp(0.0) and stamps == sorted(stamps)
        for (_, offset), start in zip(window.placements, stamps[::2]):
            assert start == labeller.timestamp(offset)
        radio = render(window.placements, audio, len(window.audio) / 16000, np.random.default_rng(1))
        # The keyed hiss and squelch tail after the last clip may lengthen the window, never past 30 s.
        assert len(window.audio) <= len(radio) <= 30 * 16000
        assert not np.allclose(radio[: len(window.audio)], window.audio)
    assert max(w.clips for w in windows) > 2, "short clips share a window"


def test_embedded_base_loss_falls_after_one_step(embedded_model_dir, tmp_path):
    from intercept.adapt import AdaptOptions, Clip, Labeller, load_base, plan_windows, train, window_loss
    from intercept.audio import decode
    from intercept.packing import PackOptions

    model, processor, _, _ = load_base("base")
    labeller = Labeller(processor.tokenizer)
    recording = _manifest()["plain_traffic.wav"]
    samples = decode(str(SAMPLES / "plain_traffic.wav")).samples
    clips, audio = [], {}
    for n, tx in enumerate(recording["transmissions"][:2]):
        clip = Clip(tmp_path / f"{n}.wav", tx["end"] - tx["start"], tx["text_fa"], "c", "c:corpus")
        clips.append(clip)
        audio[clip.path] = samples[int(tx["start"] * 16000): int(tx["end"] * 16000)]
    windows = plan_windows(clips, audio, labeller, PackOptions())
    before = window_loss(model, processor, windows)
    summary = train(model, processor, windows, AdaptOptions(epochs=1, max_steps=1, warmup_fraction=0.0,
                                                            progress=False), tmp_path / "ckpt", log=lambda m: None)
    after = window_loss(model, processor, windows)
    assert summary["steps"] == 1
    assert after < before - 0.05, (before, after)


def test_ctrl_c_leaves_the_last_complete_epoch(tiny_base, tmp_path, monkeypatch):
    from intercept import adapt as adapt_module
    from intercept.adapt import AdaptInterrupted, AdaptOptions, Window, load_base, train

    model, processor, _, _ = load_base(str(tiny_base))
    eot = processor.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    sot = processor.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    windows = [Window(np.zeros(16000, dtype=np.float32), [sot, sot + 1, sot + 2, 400, eot], [])]
    batches = adapt_module._batches
    calls = []

    def interrupt_in_epoch_two(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return batches(*args)

    monkeypatch.setattr(adapt_module, "_batches", interrupt_in_epoch_two)
    with pytest.raises(AdaptInterrupted) as caught:
        train(model, processor, windows, AdaptOptions(epochs=3, progress=False), tmp_path / "ckpt", log=lambda m: None)
    assert caught.value.checkpoint == tmp_path / "ckpt" / "epoch-1"
    assert "last good checkpoint is" in str(caught.value) and str(tmp_path / "ckpt" / "epoch-1") in str(caught.value)
    assert (caught.value.checkpoint / "config.json").is_file()
    assert [p.name for p in (tmp_path / "ckpt").iterdir()] == ["epoch-1"], "no half-written checkpoint"


def test_train_encoder_trains_the_whole_model(tiny_base, tmp_path):
    import torch

    from intercept.adapt import AdaptOptions, Window, load_base, train

    model, processor, _, _ = load_base(str(tiny_base))
    eot = processor.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    sot = processor.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    audio = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1
    windows = [Window(audio, [sot, sot + 1, sot + 2, 400, 401, eot], [])]
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    train(model, processor, windows, AdaptOptions(epochs=1, train="encoder", warmup_fraction=0.0, progress=False),
          tmp_path / "ckpt", log=lambda m: None)
    changed = {name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}
    assert any(name.startswith("model.encoder.layers") for name in changed)
    assert any(name.startswith("model.decoder.layers") for name in changed)

    model, processor, _, _ = load_base(str(tiny_base))
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    train(model, processor, windows, AdaptOptions(epochs=1, train="decoder", warmup_fraction=0.0, progress=False),
          tmp_path / "ckpt2", log=lambda m: None)
    changed = {name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}
    assert changed and not any(name.startswith("model.encoder.") for name in changed), "decoder only"


def test_train_audio_moves_only_the_encoders_top_layers(tiny_base, tmp_path):
    """train="audio": the decoder (its language model) and the encoder below its top layers
    stay the base's; the split forward pass is the encoder's own."""
    import torch

    from intercept.adapt import AdaptOptions, Window, _encode_below, _encode_top, _features, load_base, train

    model, processor, _, _ = load_base(str(tiny_base))
    encoder = model.model.encoder.eval()
    audio = np.random.default_rng(1).standard_normal(48000).astype(np.float32) * 0.1
    features = _features(processor, audio)
    with torch.no_grad():
        whole = encoder(features).last_hidden_state
        split = _encode_top(encoder, _encode_below(encoder, features, 1), 1)
    assert torch.allclose(whole, split, atol=1e-5)

    eot = processor.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    sot = processor.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    windows = [Window(audio, [sot, sot + 1, sot + 2, 400, 401, eot], [])]
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    train(model, processor, windows, AdaptOptions(epochs=1, train="audio", audio_layers=1, warmup_fraction=0.0,
                                                  progress=False), tmp_path / "ckpt", log=lambda m: None)
    changed = {name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}
    assert any(name.startswith("model.encoder.layers.0.") for name in changed)
    assert not any(name.startswith(("model.decoder.", "model.encoder.conv", "model.encoder.embed", "proj_out"))
                   for name in changed), sorted(changed)
    with pytest.raises(ValueError):
        AdaptOptions(train="audio", audio_layers=0)


def test_train_decoder_and_audio_moves_the_decoder_and_the_encoders_top_layers_only(tiny_base, tmp_path):
    """train="decoder+audio": the decoder and the encoder's top layer learn; the encoder's
    convolutions and positions stay the base's (computed once, as the lower layers are:
    the split forward pass is tested above)."""
    import torch

    from intercept.adapt import AdaptOptions, Window, load_base, train

    model, processor, _, _ = load_base(str(tiny_base))
    audio = np.random.default_rng(2).standard_normal(48000).astype(np.float32) * 0.1
    eot = processor.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    sot = processor.tokenizer.convert_tokens_to_ids("<|startoftranscript|>")
    windows = [Window(audio, [sot, sot + 1, sot + 2, 400, 401, eot], [])]
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    layers = len(model.model.encoder.layers)
    train(model, processor, windows, AdaptOptions(epochs=1, train="decoder+audio", audio_layers=1,
                                                  warmup_fraction=0.0, progress=False),
          tmp_path / "ckpt", log=lambda m: None)
    changed = {name for name, p in model.named_parameters() if not torch.equal(before[name], p.detach())}
    assert any(name.startswith(f"model.encoder.layers.{layers - 1}.") for name in changed), sorted(changed)
    assert any(name.startswith("model.decoder.layers.") for name in changed), sorted(changed)
    assert not any(name.startswith(("model.encoder.conv", "model.encoder.embed")) for name in changed), sorted(changed)


def test_the_encoder_can_take_its_own_share(tiny_base):
    import torch

    from intercept.adapt import ENCODER, AdaptOptions, blend_with_base, weights_of
    from intercept.convert import load_hf_whisper

    model = load_hf_whisper(tiny_base)[0]
    base = weights_of(model)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(1.0)
    blend_with_base(model, base, 0.5, encoder=1.0)
    named = dict(model.named_parameters())
    assert any(name.startswith(ENCODER) for name in named)
    for name, tensor in weights_of(model).items():
        if name in named:
            share = 1.0 if name.startswith(ENCODER) else 0.5
            assert torch.allclose(tensor, base[name] + share, atol=1e-5), name
    with pytest.raises(ValueError):
        AdaptOptions(blend_encoder=0)
