"""Rebuild openai-whisper and transformers models from a CTranslate2 Whisper model, offline.

Air-gapped analysts often hold only the CTranslate2 form of a model (the embedded base, or a
large-v3 copied in for faster-whisper). The same weights drive the other two engines once
they are laid out the way those libraries expect, so no download is ever needed.

``model.bin`` is CTranslate2's own binary format (``ctranslate2/specs/model_spec.py``,
``_serialize``): a version, the spec name, a revision, then named variables each with shape,
data type and raw bytes, then aliases (``decoder/projection/weight`` is an alias of the token
embedding). No library reads it back into numpy, so :func:`read_ct2_variables` does, in a few
lines of ``struct``. The Whisper spec fuses self-attention q/k/v into ``linear_0`` (k has no
bias in Whisper: CTranslate2 stores zeros there) and cross-attention k/v into ``linear_1``.
"""
from __future__ import annotations

import json
import mmap
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Union

import numpy as np

from .models import ModelError

TARGETS = ("openai-whisper", "transformers")

# CTranslate2's DataType enum order (include/ctranslate2/types.h); bfloat16 has no numpy type
# and is widened by hand below.
_CT2_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, "bfloat16")
_SUPPORTED_BINARY_VERSIONS = (5, 6)

# Whisper's special tokens, looked up by text so that vocabularies with an extra language
# (large-v3 adds <|yue|>) still get the right ids.
_NON_LANGUAGE_SPECIALS = {
    "<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>", "<|startoflm|>",
    "<|startofprev|>", "<|nocaptions|>", "<|nospeech|>", "<|notimestamps|>",
}
_TIMESTAMP = re.compile(r"<\|\d+\.\d+\|>")


@dataclass(frozen=True)
class WhisperDims:
    """The shape of a Whisper model, named as openai-whisper's ``ModelDimensions``."""

    n_mels: int
    n_vocab: int
    n_audio_ctx: int
    n_audio_state: int
    n_audio_head: int
    n_audio_layer: int
    n_text_ctx: int
    n_text_state: int
    n_text_head: int
    n_text_layer: int


def read_ct2_variables(model_bin: Union[str, Path]) -> tuple[str, dict[str, np.ndarray]]:
    """Return (spec name, {variable name: array}) from a CTranslate2 ``model.bin``.

    Arrays keep their stored type (float16 for most published models); aliases point at the
    same array as their target. Large models are memory-mapped, not read into memory twice.
    """
    path = Path(model_bin)
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        try:
            buffer = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # empty file
            raise ModelError(f"{path} is empty, not a CTranslate2 model") from None
    offset = 0

    def take(fmt: str):
        nonlocal offset
        value = struct.unpack_from(fmt, buffer, offset)
        offset += struct.calcsize(fmt)
        return value[0]

    def take_string() -> str:
        nonlocal offset
        length = take("H")  # includes the trailing NUL
        text = bytes(buffer[offset : offset + length - 1]).decode("utf-8")
        offset += length
        return text

    try:
        version = take("I")
        if version not in _SUPPORTED_BINARY_VERSIONS:
            raise ModelError(
                f"{path}: CTranslate2 binary version {version} is not supported (expected one of "
                f"{_SUPPORTED_BINARY_VERSIONS})"
            )
        spec = take_string()
        take("I")  # spec revision: Whisper's layout has not changed across revisions 1-3
        variables: dict[str, np.ndarray] = {}
        for _ in range(take("I")):
            name = take_string()
            shape = tuple(take("I") for _ in range(take("B")))
            type_id = take("B")
            num_bytes = take("I")
            if type_id >= len(_CT2_DTYPES):
                raise ModelError(f"{path}: variable {name} has unknown data type id {type_id}")
            dtype = _CT2_DTYPES[type_id]
            if dtype == "bfloat16":
                raw = np.frombuffer(buffer, dtype=np.uint16, count=num_bytes // 2, offset=offset)
                array = (raw.astype(np.uint32) << 16).view(np.float32)
            else:
                array = np.frombuffer(buffer, dtype=dtype, count=num_bytes // np.dtype(dtype).itemsize, offset=offset)
            variables[name] = array.reshape(shape)
            offset += num_bytes
        for _ in range(take("I")):
            alias = take_string()
            variables[alias] = variables[take_string()]
    except (struct.error, UnicodeDecodeError, ValueError, KeyError) as exc:
        raise ModelError(f"{path} is not a readable CTranslate2 model ({type(exc).__name__}: {exc})") from None
    return spec, variables


def _weight(variables: dict[str, np.ndarray], name: str) -> np.ndarray:
    """A float variable, de-quantised when CTranslate2 stored it as int8/int16 with a scale."""
    value = variables[name]
    scale = variables.get(name + "_scale")
    if scale is None:
        return value
    value = value.astype(np.float32)
    scale = scale.astype(np.float32)
    if scale.ndim == 0:  # int16: one scale per tensor
        return value / scale
    return value / scale.reshape((-1,) + (1,) * (value.ndim - 1))  # int8: one scale per output row


def whisper_dims(variables: dict[str, np.ndarray]) -> WhisperDims:
    def layers(prefix: str) -> int:
        found = {int(m.group(1)) for k in variables if (m := re.match(prefix + r"/layer_(\d+)/", k))}
        return max(found) + 1 if found else 0

    embed = variables["decoder/embeddings/weight"]
    return WhisperDims(
        n_mels=int(variables["encoder/conv1/weight"].shape[1]),
        n_vocab=int(embed.shape[0]),
        n_audio_ctx=int(variables["encoder/position_encodings/encodings"].shape[0]),
        n_audio_state=int(variables["encoder/conv1/weight"].shape[0]),
        n_audio_head=int(variables["encoder/num_heads"]),
        n_audio_layer=layers("encoder"),
        n_text_ctx=int(variables["decoder/position_encodings/encodings"].shape[0]),
        n_text_state=int(embed.shape[1]),
        n_text_head=int(variables["decoder/num_heads"]),
        n_text_layer=layers("decoder"),
    )


def openai_state_dict(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """CTranslate2 Whisper variables renamed and split into openai-whisper's state dict."""
    state: dict[str, np.ndarray] = {}
    dims = whisper_dims(variables)

    def put_linear(target: str, source: str, bias: bool = True) -> None:
        state[f"{target}.weight"] = _weight(variables, f"{source}/weight")
        if bias:
            state[f"{target}.bias"] = variables[f"{source}/bias"]

    def put_norm(target: str, source: str) -> None:
        state[f"{target}.weight"] = variables[f"{source}/gamma"]
        state[f"{target}.bias"] = variables[f"{source}/beta"]

    def put_fused(target: str, source: str, parts: tuple[str, ...]) -> None:
        weights = np.split(_weight(variables, f"{source}/weight"), len(parts))
        biases = np.split(variables[f"{source}/bias"], len(parts))
        for part, weight, bias in zip(parts, weights, biases):
            state[f"{target}.{part}.weight"] = weight
            if part != "key":  # Whisper's key projection has no bias (CTranslate2 stored zeros)
                state[f"{target}.{part}.bias"] = bias

    def put_block(target: str, source: str, cross: bool) -> None:
        put_fused(f"{target}.attn", f"{source}/self_attention/linear_0", ("query", "key", "value"))
        put_linear(f"{target}.attn.out", f"{source}/self_attention/linear_1")
        put_norm(f"{target}.attn_ln", f"{source}/self_attention/layer_norm")
        if cross:
            put_linear(f"{target}.cross_attn.query", f"{source}/attention/linear_0")
            put_fused(f"{target}.cross_attn", f"{source}/attention/linear_1", ("key", "value"))
            put_linear(f"{target}.cross_attn.out", f"{source}/attention/linear_2")
            put_norm(f"{target}.cross_attn_ln", f"{source}/attention/layer_norm")
        put_linear(f"{target}.mlp.0", f"{source}/ffn/linear_0")
        put_linear(f"{target}.mlp.2", f"{source}/ffn/linear_1")
        put_norm(f"{target}.mlp_ln", f"{source}/ffn/layer_norm")

    for conv in ("conv1", "conv2"):
        state[f"encoder.{conv}.weight"] = _weight(variables, f"encoder/{conv}/weight")
        state[f"encoder.{conv}.bias"] = variables[f"encoder/{conv}/bias"]
    state["encoder.positional_embedding"] = variables["encoder/position_encodings/encodings"]
    for i in range(dims.n_audio_layer):
        put_block(f"encoder.blocks.{i}", f"encoder/layer_{i}", cross=False)
    put_norm("encoder.ln_post", "encoder/layer_norm")
    state["decoder.token_embedding.weight"] = _weight(variables, "decoder/embeddings/weight")
    state["decoder.positional_embedding"] = variables["decoder/position_encodings/encodings"]
    for i in range(dims.n_text_layer):
        put_block(f"decoder.blocks.{i}", f"decoder/layer_{i}", cross=True)
    put_norm("decoder.ln", "decoder/layer_norm")
    return state


def hf_state_dict(openai_state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """openai-whisper names to transformers' WhisperForConditionalGeneration names (the same
    table as transformers' own convert_openai_to_hf.py, which needs the network for its
    tokenizer and so cannot be used here)."""
    renames = (
        (r"^encoder\.positional_embedding$", "model.encoder.embed_positions.weight"),
        (r"^decoder\.positional_embedding$", "model.decoder.embed_positions.weight"),
        (r"^decoder\.token_embedding\.", "model.decoder.embed_tokens."),
        (r"^encoder\.ln_post\.", "model.encoder.layer_norm."),
        (r"^decoder\.ln\.", "model.decoder.layer_norm."),
        (r"^(encoder|decoder)\.blocks\.", r"model.\1.layers."),
        (r"^encoder\.conv", "model.encoder.conv"),
        (r"\.attn\.query\.", ".self_attn.q_proj."),
        (r"\.attn\.key\.", ".self_attn.k_proj."),
        (r"\.attn\.value\.", ".self_attn.v_proj."),
        (r"\.attn\.out\.", ".self_attn.out_proj."),
        (r"\.attn_ln\.", ".self_attn_layer_norm."),
        (r"\.cross_attn\.query\.", ".encoder_attn.q_proj."),
        (r"\.cross_attn\.key\.", ".encoder_attn.k_proj."),
        (r"\.cross_attn\.value\.", ".encoder_attn.v_proj."),
        (r"\.cross_attn\.out\.", ".encoder_attn.out_proj."),
        (r"\.cross_attn_ln\.", ".encoder_attn_layer_norm."),
        (r"\.mlp\.0\.", ".fc1."),
        (r"\.mlp\.2\.", ".fc2."),
        (r"\.mlp_ln\.", ".final_layer_norm."),
    )
    state = {}
    for name, value in openai_state.items():
        for pattern, replacement in renames:
            name = re.sub(pattern, replacement, name)
        state[name] = value
    state["proj_out.weight"] = state["model.decoder.embed_tokens.weight"]  # tied, as in Whisper
    return state


@dataclass(frozen=True)
class Ct2Whisper:
    """A CTranslate2 Whisper model directory, read: weights, shape, and the facts from the
    files beside ``model.bin`` (config.json, vocabulary.txt) that the other formats need."""

    directory: Path
    variables: dict[str, np.ndarray]
    dims: WhisperDims
    config: dict
    vocabulary: list[str]

    def token_id(self, token: str) -> int:
        try:
            return self.vocabulary.index(token)
        except ValueError:
            raise ModelError(f"{self.directory}: vocabulary.txt has no token {token}") from None

    @property
    def languages(self) -> dict[str, int]:
        """Language code -> token id (``{"fa": 50300, ...}``)."""
        ids = self.config.get("lang_ids") or [
            i for i, t in enumerate(self.vocabulary)
            if t.startswith("<|") and t not in _NON_LANGUAGE_SPECIALS and not _TIMESTAMP.fullmatch(t)
            and i > self.token_id("<|startoftranscript|>")
        ]
        return {self.vocabulary[i][2:-2]: i for i in ids}

    @property
    def alignment_heads(self) -> list[list[int]]:
        heads = self.config.get("alignment_heads")
        if heads:
            return [list(map(int, h)) for h in heads]
        # CTranslate2's own default when a model names none: every head of the last half.
        n, h = self.dims.n_text_layer, self.dims.n_text_head
        return [[layer, head] for layer in range(n // 2, n) for head in range(h)]


def read_ct2_whisper(model_dir: Union[str, Path]) -> Ct2Whisper:
    """Read a CTranslate2 Whisper directory (model.bin, config.json, vocabulary.txt)."""
    directory = Path(model_dir).expanduser()
    for required in ("model.bin", "config.json"):
        if not (directory / required).is_file():
            raise ModelError(f"{directory} is not a CTranslate2 Whisper model: {required} is missing")
    spec, variables = read_ct2_variables(directory / "model.bin")
    if spec != "WhisperSpec":
        raise ModelError(f"{directory / 'model.bin'} holds a {spec}, not a Whisper model")
    try:
        config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{directory / 'config.json'} is not valid JSON ({exc})") from None
    vocabulary_file = directory / "vocabulary.txt"
    if vocabulary_file.is_file():
        vocabulary = vocabulary_file.read_text(encoding="utf-8").split("\n")
    elif (directory / "vocabulary.json").is_file():
        vocabulary = json.loads((directory / "vocabulary.json").read_text(encoding="utf-8"))
    else:
        raise ModelError(f"{directory} is not a CTranslate2 Whisper model: vocabulary.txt is missing")
    dims = whisper_dims(variables)
    vocabulary = vocabulary[: dims.n_vocab]
    return Ct2Whisper(directory, variables, dims, config, vocabulary)


def _torch_state(state: dict[str, np.ndarray], dtype=None):
    import torch

    # copy: the arrays are read-only views of the memory-mapped model.bin.
    out = {name: torch.from_numpy(np.array(value)) for name, value in state.items()}
    if dtype is not None:
        out = {name: value.to(dtype) for name, value in out.items()}
    return out


def _storage_dtype(model: Ct2Whisper):
    """float16 when the CTranslate2 model was float16 (as openai's own checkpoints are),
    float32 otherwise (float32 models, and int8/int16 models once de-quantised)."""
    import torch

    dtype = model.variables["decoder/embeddings/weight"].dtype
    return torch.float16 if dtype == np.float16 else torch.float32


def openai_checkpoint(model: Ct2Whisper) -> dict:
    """The checkpoint dict that ``whisper.load_model`` reads: dims, state dict, and the
    alignment heads (an extra key openai-whisper ignores; intercept's engine applies it)."""
    return {
        "dims": {k: getattr(model.dims, k) for k in WhisperDims.__dataclass_fields__},
        "model_state_dict": _torch_state(openai_state_dict(model.variables), _storage_dtype(model)),
        "alignment_heads": model.alignment_heads,
    }


def load_openai_whisper(model_dir: Union[str, Path]):
    """A ready ``whisper.model.Whisper`` (float32, CPU) built straight from a CTranslate2 model,
    without writing a file."""
    import torch
    from whisper.model import ModelDimensions, Whisper

    model = read_ct2_whisper(model_dir)
    whisper_model = Whisper(ModelDimensions(**{k: getattr(model.dims, k) for k in WhisperDims.__dataclass_fields__}))
    whisper_model.load_state_dict(_torch_state(openai_state_dict(model.variables), torch.float32))
    set_openai_alignment_heads(whisper_model, model.alignment_heads)
    return whisper_model.eval()


def set_openai_alignment_heads(whisper_model, heads: list[list[int]]) -> None:
    """openai-whisper only knows alignment heads for its own named models; set them from a
    (layer, head) list so word timestamps work on converted models too."""
    import torch

    mask = torch.zeros(whisper_model.dims.n_text_layer, whisper_model.dims.n_text_head, dtype=torch.bool)
    for layer, head in heads:
        mask[layer, head] = True
    whisper_model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)


def hf_config(model: Ct2Whisper):
    """transformers' WhisperConfig and GenerationConfig for this model."""
    from transformers import GenerationConfig, WhisperConfig

    dims = model.dims
    eot = model.token_id("<|endoftext|>")
    sot = model.token_id("<|startoftranscript|>")
    no_timestamps = model.token_id("<|notimestamps|>")
    ffn = int(model.variables["encoder/layer_0/ffn/linear_0/weight"].shape[0])
    suppress = list(model.config.get("suppress_ids") or [])
    begin_suppress = list(model.config.get("suppress_ids_begin") or [220, eot])
    config = WhisperConfig(
        vocab_size=dims.n_vocab,
        num_mel_bins=dims.n_mels,
        encoder_layers=dims.n_audio_layer,
        encoder_attention_heads=dims.n_audio_head,
        decoder_layers=dims.n_text_layer,
        decoder_attention_heads=dims.n_text_head,
        encoder_ffn_dim=ffn,
        decoder_ffn_dim=int(model.variables["decoder/layer_0/ffn/linear_0/weight"].shape[0]),
        d_model=dims.n_audio_state,
        max_source_positions=dims.n_audio_ctx,
        max_target_positions=dims.n_text_ctx,
        decoder_start_token_id=sot,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        suppress_tokens=suppress,
        begin_suppress_tokens=begin_suppress,
        tie_word_embeddings=True,
    )
    config.architectures = ["WhisperForConditionalGeneration"]
    languages = model.languages
    generation = GenerationConfig(
        decoder_start_token_id=sot,
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        max_length=dims.n_text_ctx,
        suppress_tokens=suppress,
        begin_suppress_tokens=begin_suppress,
        alignment_heads=model.alignment_heads,
        lang_to_id={f"<|{code}|>": i for code, i in languages.items()},
        task_to_id={"transcribe": model.token_id("<|transcribe|>"), "translate": model.token_id("<|translate|>")},
        no_timestamps_token_id=no_timestamps,
        prev_sot_token_id=model.token_id("<|startofprev|>"),
        is_multilingual=len(languages) > 1,
        max_initial_timestamp_index=50,  # Whisper's 1 s cap on the first timestamp
        return_timestamps=False,
        forced_decoder_ids=None,
    )
    return config, generation


def _hf_processor(model: Ct2Whisper):
    """WhisperProcessor from the tokenizer.json beside model.bin, with the timestamp tokens
    added (the hub's Whisper tokenizers carry them; CTranslate2 copies keep them only in
    vocabulary.txt) and a feature extractor sized to the model's mel bins."""
    from transformers import AddedToken, WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

    tokenizer_file = model.directory / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise ModelError(f"{model.directory}: tokenizer.json is missing (needed for the transformers format)")
    tokenizer = WhisperTokenizer(tokenizer_file=str(tokenizer_file))
    # transformers finds the first timestamp id as "last special id + 1", so every Whisper
    # special token (<|startoftranscript|> .. <|notimestamps|>) must be registered as special.
    first_special = model.token_id("<|endoftext|>")
    specials = model.vocabulary[first_special : model.token_id("<|notimestamps|>") + 1]
    tokenizer.add_special_tokens({"additional_special_tokens": specials})
    timestamps = [t for t in model.vocabulary if _TIMESTAMP.fullmatch(t)]
    missing = [t for t in timestamps if tokenizer.convert_tokens_to_ids(t) in (None, tokenizer.unk_token_id)]
    if missing:
        tokenizer.add_tokens([AddedToken(t, lstrip=False, rstrip=False, normalized=False) for t in missing])
    first = model.token_id(timestamps[0]) if timestamps else None
    if first is not None and tokenizer.convert_tokens_to_ids(timestamps[0]) != first:
        raise ModelError(
            f"{tokenizer_file}: timestamp tokens would get ids from {tokenizer.convert_tokens_to_ids(timestamps[0])}, "
            f"vocabulary.txt has them from {first}"
        )
    extractor = WhisperFeatureExtractor(feature_size=model.dims.n_mels)
    return WhisperProcessor(feature_extractor=extractor, tokenizer=tokenizer)


def load_hf_whisper(model_dir: Union[str, Path]):
    """(WhisperForConditionalGeneration in float32, WhisperProcessor) built straight from a
    CTranslate2 model, without writing a file."""
    import torch
    from transformers import WhisperForConditionalGeneration

    model = read_ct2_whisper(model_dir)
    config, generation = hf_config(model)
    hf_model = WhisperForConditionalGeneration(config)
    state = _torch_state(hf_state_dict(openai_state_dict(model.variables)), torch.float32)
    missing, unexpected = hf_model.load_state_dict(state, strict=False)
    _check_loaded(model_dir, missing, unexpected)
    hf_model.generation_config = generation
    return hf_model.eval(), _hf_processor(model)


def _check_loaded(model_dir, missing, unexpected) -> None:
    # proj_out is tied to the token embedding, so transformers may list it either way.
    missing = [k for k in missing if k != "proj_out.weight"]
    if missing or unexpected:
        raise ModelError(
            f"{model_dir}: converted weights do not fit transformers' Whisper "
            f"(missing {missing[:3]}, unexpected {list(unexpected)[:3]})"
        )


def convert_ct2(
    model_dir: Union[str, Path],
    out_dir: Union[str, Path],
    to: Literal["openai-whisper", "transformers"] = "openai-whisper",
) -> Path:
    """Write a CTranslate2 Whisper model in another library's format; return what to load.

    * ``openai-whisper``: ``out_dir/<model dir name>.pt``, a ``{"dims", "model_state_dict"}``
      checkpoint for ``whisper.load_model(path)``.
    * ``transformers``: ``out_dir`` itself, for ``WhisperForConditionalGeneration.from_pretrained``
      and ``WhisperProcessor.from_pretrained`` (config, generation config, safetensors weights,
      tokenizer and feature-extractor files).

    Weights stay float16 when the source is float16; int8/int16 models are de-quantised.
    """
    if to not in TARGETS:
        raise ValueError(f"unknown conversion target '{to}' (choose from: {', '.join(TARGETS)})")
    model = read_ct2_whisper(model_dir)
    out = Path(out_dir).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    if to == "openai-whisper":
        import torch

        target = out / f"{model.directory.resolve().name}.pt"
        partial = target.with_suffix(".pt.partial")
        torch.save(openai_checkpoint(model), partial)
        partial.replace(target)  # never leave a half-written checkpoint under the real name
        return target

    import torch
    from transformers import WhisperForConditionalGeneration

    config, generation = hf_config(model)
    dtype = _storage_dtype(model)
    with torch.device("meta"):  # no random initialisation of weights that are replaced anyway
        hf_model = WhisperForConditionalGeneration(config)
    state = _torch_state(hf_state_dict(openai_state_dict(model.variables)), dtype)
    missing, unexpected = hf_model.load_state_dict(state, strict=False, assign=True)
    _check_loaded(model_dir, missing, unexpected)
    hf_model.tie_weights()
    hf_model.config.dtype = str(dtype).removeprefix("torch.")
    hf_model.generation_config = generation
    hf_model.save_pretrained(out)
    _hf_processor(model).save_pretrained(out)
    return out
