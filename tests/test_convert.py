"""Offline conversion of the embedded CTranslate2 model to openai-whisper and transformers:
the files load in their own libraries, hold the very same weights, and compute the same
logits for the same input."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from intercept.convert import _weight, convert_ct2, read_ct2_variables, read_ct2_whisper
from intercept.models import ModelError

torch = pytest.importorskip("torch")
pytest.importorskip("whisper")
pytest.importorskip("transformers")

SAMPLES = Path(__file__).resolve().parent.parent / "audio_samples"


def converted_dir(tmp_path_factory, embedded_model_dir) -> dict:
    """Both conversions of the embedded model, written once per test session (shared on disk
    with test_engines.py, which imports this)."""
    root = tmp_path_factory.getbasetemp() / "converted-base"
    done = root / "done"
    if not done.is_file():
        pt = convert_ct2(embedded_model_dir, root / "openai", to="openai-whisper")
        hf = convert_ct2(embedded_model_dir, root / "transformers", to="transformers")
        done.write_text(f"{pt}\n{hf}\n")
    pt, hf = done.read_text().split()
    return {"openai-whisper": Path(pt), "transformers": Path(hf)}


@pytest.fixture(scope="session")
def converted(tmp_path_factory, embedded_model_dir):
    return converted_dir(tmp_path_factory, embedded_model_dir)


@pytest.fixture(scope="session")
def ct2(embedded_model_dir):
    return read_ct2_whisper(embedded_model_dir)


@pytest.fixture(scope="session")
def openai_model(converted):
    import whisper

    return whisper.load_model(str(converted["openai-whisper"]), device="cpu").eval()


@pytest.fixture(scope="session")
def hf_model(converted):
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    model = WhisperForConditionalGeneration.from_pretrained(converted["transformers"], dtype=torch.float32)
    return model.eval(), WhisperProcessor.from_pretrained(converted["transformers"])


def test_reader_sees_whisper_base(ct2):
    d = ct2.dims
    assert (d.n_mels, d.n_vocab, d.n_audio_layer, d.n_text_layer, d.n_audio_head, d.n_text_state) == (
        80, 51865, 6, 6, 8, 512
    )
    assert ct2.languages["fa"] == ct2.token_id("<|fa|>")
    assert ct2.alignment_heads == ct2.config["alignment_heads"]


def test_openai_checkpoint_holds_the_same_weights(converted, ct2, openai_model):
    v = ct2.variables
    state = torch.load(converted["openai-whisper"], weights_only=True)
    assert state["dims"]["n_mels"] == 80 and state["alignment_heads"] == ct2.config["alignment_heads"]
    sd = state["model_state_dict"]
    fused = v["decoder/layer_2/self_attention/linear_0/weight"]
    np.testing.assert_array_equal(sd["decoder.blocks.2.attn.query.weight"].numpy(), fused[:512])
    np.testing.assert_array_equal(sd["decoder.blocks.2.attn.key.weight"].numpy(), fused[512:1024])
    np.testing.assert_array_equal(sd["decoder.blocks.2.attn.value.bias"].numpy(),
                                  v["decoder/layer_2/self_attention/linear_0/bias"][1024:])
    assert "decoder.blocks.2.attn.key.bias" not in sd
    np.testing.assert_array_equal(sd["decoder.blocks.5.cross_attn.value.weight"].numpy(),
                                  v["decoder/layer_5/attention/linear_1/weight"][512:])
    np.testing.assert_array_equal(sd["encoder.blocks.3.mlp.2.weight"].numpy(), v["encoder/layer_3/ffn/linear_1/weight"])
    # Loaded into openai-whisper's own model (float32), the values are unchanged.
    np.testing.assert_array_equal(openai_model.encoder.conv1.weight.detach().numpy(),
                                  v["encoder/conv1/weight"].astype(np.float32))


def test_engine_loader_applies_the_models_alignment_heads(converted):
    from intercept.engines.openai_whisper import load_openai_model

    # whisper.load_model(path) would mark every head of the last three layers; the model's
    # own heads (config.json, kept in the checkpoint) are (3, 1), (4, 2), ... only.
    heads = load_openai_model(str(converted["openai-whisper"])).alignment_heads.to_dense()
    assert bool(heads[3, 1]) and not bool(heads[3, 0]) and int(heads.sum()) == 8


def test_transformers_directory_loads_with_model_config(converted, ct2, hf_model):
    model, processor = hf_model
    assert model.config.num_mel_bins == 80 and processor.feature_extractor.feature_size == 80
    gen = model.generation_config
    assert gen.lang_to_id["<|fa|>"] == ct2.token_id("<|fa|>")
    assert gen.alignment_heads == ct2.config["alignment_heads"]
    assert list(gen.suppress_tokens) == ct2.config["suppress_ids"]
    assert list(gen.begin_suppress_tokens) == ct2.config["suppress_ids_begin"]
    tok = processor.tokenizer
    assert tok.convert_tokens_to_ids("<|0.00|>") == ct2.token_id("<|0.00|>")
    assert tok.convert_tokens_to_ids("<|notimestamps|>") == ct2.token_id("<|notimestamps|>")
    v = ct2.variables
    q = model.model.decoder.layers[1].encoder_attn.q_proj.weight.detach().numpy()
    np.testing.assert_array_equal(q, v["decoder/layer_1/attention/linear_0/weight"].astype(np.float32))
    assert model.model.encoder.layers[0].self_attn.k_proj.bias is None
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()


def test_one_decoder_step_gives_the_same_logits(openai_model, hf_model, ct2):
    import whisper

    model, processor = hf_model
    audio = whisper.load_audio(str(SAMPLES / "short_call.wav"))
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(audio))[None]
    features = processor.feature_extractor(audio, sampling_rate=16000, return_tensors="pt").input_features
    assert float((mel - features).abs().max()) < 1e-3  # both front ends compute the same log-mel
    tokens = torch.tensor([[ct2.token_id(t) for t in ("<|startoftranscript|>", "<|fa|>", "<|transcribe|>")]])
    with torch.no_grad():
        reference = openai_model.logits(tokens, openai_model.embed_audio(mel))
        logits = model(input_features=mel, decoder_input_ids=tokens).logits
    assert logits.shape == reference.shape == (1, 3, 51865)
    assert float((logits - reference).abs().max()) <= 1e-3


def test_missing_model_is_one_clear_line(tmp_path):
    with pytest.raises(ModelError) as info:
        convert_ct2(tmp_path / "nowhere", tmp_path / "out", to="transformers")
    message = str(info.value)
    assert "model.bin is missing" in message and "nowhere" in message and "\n" not in message


def test_corrupt_model_bin_is_one_clear_line(tmp_path, embedded_model_dir):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    with open(embedded_model_dir / "model.bin", "rb") as handle:
        (bad / "model.bin").write_bytes(handle.read(5000))  # cut inside the first tensor
    with pytest.raises(ModelError) as info:
        read_ct2_whisper(bad)
    assert str(bad / "model.bin") in str(info.value) and "\n" not in str(info.value)
    (bad / "model.bin").write_bytes(b"\x63\x00\x00\x00")
    with pytest.raises(ModelError, match="binary version 99"):
        read_ct2_variables(bad / "model.bin")


def test_unknown_target_is_refused(embedded_model_dir, tmp_path):
    with pytest.raises(ValueError, match="unknown conversion target 'onnx'"):
        convert_ct2(embedded_model_dir, tmp_path, to="onnx")


def test_int8_weights_are_dequantised():
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(4, 6)).astype(np.float32)
    scale = 127.0 / np.abs(weight).max(axis=1)  # CTranslate2's int8 scheme: one scale per row
    quantised = np.rint(weight * scale[:, None]).astype(np.int8)
    restored = _weight({"w": quantised, "w_scale": scale.astype(np.float32)}, "w")
    np.testing.assert_allclose(restored, weight, atol=np.abs(weight).max() / 127)
    conv = rng.normal(size=(3, 2, 3)).astype(np.float32)
    conv_scale = 127.0 / np.abs(conv.reshape(3, -1)).max(axis=1)
    conv_q = np.rint(conv * conv_scale[:, None, None]).astype(np.int8)
    np.testing.assert_allclose(_weight({"c": conv_q, "c_scale": conv_scale}, "c"), conv, atol=np.abs(conv).max() / 127)
