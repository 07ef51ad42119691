"""Adapt Whisper to a team's own traffic: fine-tune on labelled corpora, check on held-out speech.

    from intercept.adapt import AdaptOptions, adapt
    card = adapt(["corpus/"], AdaptOptions(out="models/ours"))

A corpus is a folder with `metadata.tsv` (`path`, `duration_s`, `transcript`, and optionally
`speaker`, `voice`, `recording` columns), the format of `../shared/eval/` and of
`intercept export STORE --format corpus`; a `clips_info.tsv` beside it (cv_fa's) may add the
speaker column.

The steps, each chosen for a CPU-only machine:

* **Base.** The embedded CTranslate2 Whisper base (or any CTranslate2 Whisper directory) is
  rebuilt in transformers' form in memory by intercept.convert, offline.
* **Held-out part.** Whole speakers or recordings (never single clips) are held out, about
  `held_out_fraction` of the clips, or an explicit corpus is (`held_out`); a training clip
  whose normalised sentence also occurs in the held-out part is dropped from training.
* **Windows.** Short clips are laid into 30 s windows the way the pipeline packs transmissions
  for inference (intercept.packing, the same window and gap), and the labels carry Whisper's
  timestamp tokens at each clip's start and end in the window, so the adapted model keeps
  writing the segment times that the pipeline's packed decoding maps back to transmissions.
* **Lower encoder layers frozen, their outputs computed once** (`train="decoder+audio"`, the
  default): each window goes through the encoder's lower layers once, and the decoder and the
  encoder's top `audio_layers` layers are trained on the cached outputs, which makes an epoch
  several times cheaper on a CPU. `train="decoder"` freezes the whole encoder, `train="audio"`
  the decoder; `train="encoder"` trains the whole model (for a GPU).
  With `augment_radio`, every window is also encoded as received through the project's radio
  channel (intercept.channel); each epoch trains on one of the two copies per window, drawn
  at random, so augmentation costs encoder time once and no training time.
* **Result.** Converted to CTranslate2 with ctranslate2's own TransformersConverter, scored on
  the held-out part before and after with the product's own engine (faster-whisper, beam 5,
  each clip one transmission) and intercept.evaluate, and written only when it is not worse
  than the base (unless `force`). `model_card.json` holds the scores, the base and corpora
  with their hashes, the split and the settings; `intercept run --model DIR` records the card's
  hash in the run.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Literal, Optional, Sequence

import numpy as np

from .evaluate import ErrorCounts, ErrorRateScorer, read_corpus
from .models import ModelError, resolve_model, sha256_of
from .packing import PackOptions, plan_packs
from .types import Transmission

CARD = "model_card.json"
CHECKPOINTS = "checkpoints"
SAMPLE_RATE = 16000
# Whisper's decoder holds 448 positions; a window's label (prompt, text, timestamps, end) must fit.
MAX_LABEL_TOKENS = 448
# Columns of metadata.tsv (or clips_info.tsv) that name who spoke or where a clip came from,
# in the order they are preferred for grouping the held-out part.
GROUP_COLUMNS = ("recording", "speaker", "voice")


class AdaptError(RuntimeError):
    """Adaptation cannot go on; the message says why in one line."""


class ModelWorseError(AdaptError):
    """The adapted model scored worse than its base on the held-out part and was not written."""

    def __init__(self, message: str, card: dict):
        super().__init__(message)
        self.card = card


class AdaptInterrupted(AdaptError):
    """Ctrl-C during training; `checkpoint` is the last complete epoch's (or None)."""

    def __init__(self, checkpoint: Optional[Path]):
        where = f"the last good checkpoint is {checkpoint}" if checkpoint else "no epoch was complete, no checkpoint"
        super().__init__(f"interrupted: {where}")
        self.checkpoint = checkpoint


TRAIN_PARTS = ("decoder", "encoder", "audio", "decoder+audio")


@dataclass
class AdaptOptions:
    """How `adapt` trains and checks a model."""

    out: str | os.PathLike = "adapted-model"
    epochs: int = 3
    force: bool = False  # write the model even when it is worse than its base on the held-out part
    # decoder: the encoder frozen and computed once (CPU). encoder: the whole model (GPU).
    # audio: the encoder's top `audio_layers` layers only, the decoder frozen: what is learnt
    # is how these voices and this channel sound, not the corpus's sentences, whose register
    # the decoder's language model drifts toward (docs/adapt.md). The layers below are
    # computed once, as for decoder. decoder+audio (the default): both the decoder and the
    # encoder's top layers, the layers below computed once; with blend_encoder 1 and blend 0.5
    # the one variant that met issue 24's WER target on all four held-out sets (docs/benchmarks.md,
    # "The decoder halfway and the encoder's top layers as trained").
    train: Literal["decoder", "encoder", "audio", "decoder+audio"] = "decoder+audio"
    audio_layers: int = 3
    device: Literal["cpu", "cuda"] = "cpu"
    augment_radio: bool = False
    base: str = "base"  # "base" (embedded) or a CTranslate2 Whisper directory
    # The settings of the feasibility run in issue 24 (AdamW, lr 1e-4, batch 8, 3 epochs), not
    # tuned on any evaluation speech; 10% warm-up then linear decay.
    learning_rate: float = 1e-4
    batch_size: int = 8
    warmup_fraction: float = 0.1
    weight_decay: float = 0.01
    held_out_fraction: float = 0.15
    held_out: Sequence[str] = ()  # corpora to hold out instead of a split of the training corpora
    language: str = "fa"
    beam_size: int = 5  # when scoring the held-out part
    seed: int = 0
    # The pipeline's own packing (intercept.packing): the same window and gap as at inference.
    pack: PackOptions = field(default_factory=PackOptions)
    max_steps: Optional[int] = None  # stop after this many optimiser steps (tests, smoke runs)
    progress: bool = True
    # Share of the fine-tuned weights in the written model; the rest is the base's, weight by
    # weight (WiSE-FT, Wortsman et al. 2022). Fine-tuning a decoder on a few speakers of one
    # channel also unlearns the base's wider Persian; the halfway blend keeps most of the gain
    # on the traffic trained on and less of the loss elsewhere. 0.5 is that paper's default where
    # no data of the other traffic exists to choose on, fixed before any measurement here
    # (docs/adapt.md); 1.0 writes the fine-tuned model as trained.
    blend: float = 0.5
    # The same share for the decoder's attention to the audio (its encoder_attn layers), which
    # learn to read these voices and this channel from the encoder; the rest of the decoder is
    # its language model, whose drift toward the training sentences' register is what the blend
    # holds back. None: as `blend`.
    blend_audio_attention: Optional[float] = None
    # The same share for the encoder's weights (those trained with train="audio",
    # "decoder+audio" or "encoder"): what the encoder learns is how the voices and the channel
    # sound, which did no harm on other speech as trained (docs/benchmarks.md, "Training the
    # encoder's top layers"), while the decoder's drift is what the blend is for. None: as `blend`.
    blend_encoder: Optional[float] = 1.0

    def __post_init__(self) -> None:
        if self.train not in TRAIN_PARTS:
            raise ValueError(f"train must be one of {', '.join(TRAIN_PARTS)}, not {self.train!r}")
        if self.audio_layers < 1:
            raise ValueError(f"audio_layers must be at least 1, got {self.audio_layers}")
        if self.device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', not {self.device!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if not 0 < self.held_out_fraction < 1:
            raise ValueError(f"held_out_fraction must be between 0 and 1, got {self.held_out_fraction}")
        if not 0 < self.blend <= 1:
            raise ValueError(f"blend must be above 0 and at most 1, got {self.blend}")
        if self.blend_audio_attention is not None and not 0 < self.blend_audio_attention <= 1:
            raise ValueError(f"blend_audio_attention must be above 0 and at most 1, got {self.blend_audio_attention}")
        if self.blend_encoder is not None and not 0 < self.blend_encoder <= 1:
            raise ValueError(f"blend_encoder must be above 0 and at most 1, got {self.blend_encoder}")

    def settings(self) -> dict:
        found = asdict(self)
        found["out"] = str(self.out)
        found["held_out"] = [str(p) for p in self.held_out]
        return found


@dataclass(frozen=True)
class Clip:
    """One labelled clip of a corpus."""

    path: Path
    duration_s: Optional[float]
    transcript: str
    corpus: str
    group: str  # who or where: "<corpus>:speaker:spk001"; the unit of the held-out split


def read_labelled(folder: str | os.PathLike) -> list[Clip]:
    """The clips of a corpus folder with their group (recording, speaker or voice column of
    metadata.tsv, else of clips_info.tsv; a corpus with none of them is one group)."""
    folder = Path(folder)
    items = read_corpus(folder)
    extra: dict[str, dict[str, str]] = {}
    for table in (folder / "clips_info.tsv", folder / "metadata.tsv"):
        if table.is_file():
            with open(table, encoding="utf-8", newline="") as handle:
                for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                    if row.get("path"):
                        known = extra.setdefault(str((folder / row["path"]).resolve()), {})
                        known.update({k: v for k, v in row.items() if k in GROUP_COLUMNS and v and v.strip()})
    name = str(folder.resolve())
    clips = []
    for item in items:
        found = extra.get(str(item.path), {})
        column = next((c for c in GROUP_COLUMNS if found.get(c)), None)
        group = f"{name}:{column}:{found[column].strip()}" if column else f"{name}:corpus"
        clips.append(Clip(item.path, item.duration_s, item.transcript, name, group))
    return clips


def corpus_sha256(folder: str | os.PathLike) -> str:
    """SHA-256 over metadata.tsv and every clip it lists, in order: what the model learned from."""
    folder = Path(folder)
    digest = hashlib.sha256((folder / "metadata.tsv").read_bytes())
    for item in read_corpus(folder):
        digest.update(bytes.fromhex(sha256_of(item.path)))
    return digest.hexdigest()


@dataclass
class Split:
    train: list[Clip]
    held_out: list[Clip]
    held_out_groups: list[str]
    dropped_shared_sentences: int  # training clips left out because their sentence is held out

    def to_dict(self) -> dict:
        return {"train_clips": len(self.train), "held_out_clips": len(self.held_out),
                "held_out_groups": self.held_out_groups,
                "dropped_training_clips_sharing_a_held_out_sentence": self.dropped_shared_sentences}


def split_held_out(clips: Sequence[Clip], fraction: float = 0.15, seed: int = 0,
                   held_out: Sequence[Clip] = (), scorer: Optional[ErrorRateScorer] = None) -> Split:
    """Hold out whole groups (speakers, recordings) until about `fraction` of the clips are
    held out, or take `held_out` as given; then drop every training clip whose normalised
    sentence is also held out, so no sentence is in both parts."""
    scorer = scorer or ErrorRateScorer()
    if held_out:
        chosen, train = list(held_out), list(clips)
        groups = sorted({c.group for c in chosen})
    else:
        by_group: dict[str, list[Clip]] = {}
        for clip in clips:
            by_group.setdefault(clip.group, []).append(clip)
        if len(by_group) < 2:
            raise AdaptError(
                "cannot hold out a speaker or recording: the corpora hold only one "
                f"({next(iter(by_group), 'none')}); add a speaker/recording column or pass --held-out CORPUS")
        order = sorted(by_group)
        random.Random(seed).shuffle(order)
        wanted = max(1, round(fraction * len(clips)))
        groups, count = [], 0
        for group in order:
            if count >= wanted or len(groups) == len(order) - 1:
                break
            groups.append(group)
            count += len(by_group[group])
        groups.sort()
        chosen = [c for g in groups for c in by_group[g]]
        train = [c for g in order if g not in groups for c in by_group[g]]

    def sentence(text: str) -> str:
        return " ".join(scorer.words(text))

    held_sentences = {sentence(c.transcript) for c in chosen}
    kept = [c for c in train if sentence(c.transcript) not in held_sentences]
    held_paths = {c.path for c in chosen}
    kept = [c for c in kept if c.path not in held_paths]
    return Split(kept, chosen, groups, len(train) - len(kept))


# ---------------------------------------------------------------- windows


@dataclass
class Window:
    """Training clips laid into one window: audio and the label tokens (with timestamps)."""

    audio: np.ndarray
    labels: list[int]
    placements: list[tuple[Path, float]]  # (clip, offset in the window, seconds)

    @property
    def clips(self) -> int:
        return len(self.placements)


class Labeller:
    """Whisper label tokens for a packed window: <|sot|><|fa|><|transcribe|> then, per clip,
    <|start|> text <|end|> in window time (0.02 s steps), then <|endoftext|>."""

    def __init__(self, tokenizer, language: str = "fa"):
        self.tokenizer = tokenizer
        ids = tokenizer.convert_tokens_to_ids
        self.prompt = [ids("<|startoftranscript|>"), ids(f"<|{language}|>"), ids("<|transcribe|>")]
        self.eot = ids("<|endoftext|>")
        self.timestamp_begin = ids("<|0.00|>")
        if self.timestamp_begin in (None, tokenizer.unk_token_id):
            raise AdaptError("the tokenizer has no timestamp tokens (<|0.00|>)")

    def text(self, transcript: str) -> list[int]:
        return self.tokenizer.encode(" " + transcript.strip(), add_special_tokens=False)

    def timestamp(self, seconds: float) -> int:
        return self.timestamp_begin + int(round(min(max(seconds, 0.0), 30.0) / 0.02))

    def window(self, pieces: Sequence[tuple[float, float, list[int]]]) -> list[int]:
        tokens = list(self.prompt)
        for start, end, text in pieces:
            tokens += [self.timestamp(start), *text, self.timestamp(end)]
        return tokens + [self.eot]


def _decode_in_process(path: Path) -> np.ndarray:
    """16 kHz mono float32 samples through PyAV (installed with faster-whisper). Not
    faster_whisper.audio.decode_audio: it runs a full garbage collection per file, which with
    a model in memory made loading 1,766 clips take longer than training on them."""
    import av

    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    chunks = []
    with av.open(str(path), mode="r", metadata_errors="ignore") as container:
        for frame in container.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    if not chunks:
        raise ValueError("no audio")
    return np.concatenate(chunks).astype(np.float32) / 32768.0


def _load(clip: Clip) -> Optional[np.ndarray]:
    """16 kHz mono float32 samples of a clip, or None (with a warning) when it cannot be read.
    In process first (no ffmpeg process per clip: 10x faster on thousands of short clips),
    else through intercept.audio, whose error names the file and the reason."""
    from .audio import AudioError, decode

    try:
        return _decode_in_process(clip.path)
    except Exception:  # PyAV's errors have no common base; intercept.audio says why in one line
        pass
    try:
        return decode(str(clip.path)).samples
    except AudioError as error:
        print(f"warning: {error} (clip left out)")
        return None


def plan_windows(clips: Sequence[Clip], audio: dict[Path, np.ndarray], labeller: Labeller,
                 pack: PackOptions) -> list[Window]:
    """Clips laid into windows with intercept.packing's planner, in the given order; a window
    whose label would not fit Whisper's decoder is split in two and planned again."""
    texts = {c.path: labeller.text(c.transcript) for c in clips}
    usable = [c for c in clips if c.path in audio and len(audio[c.path]) <= pack.window_s * SAMPLE_RATE
              and len(texts[c.path]) + 6 <= MAX_LABEL_TOKENS]
    # The planner lays out transmissions of one recording: give each clip a stretch of its own
    # on a virtual timeline, and cut its samples back out by that stretch.
    timeline, cursor, spans = [], 0.0, {}
    for i, clip in enumerate(usable):
        duration = len(audio[clip.path]) / SAMPLE_RATE
        timeline.append(Transmission(i, cursor, cursor + duration))
        spans[i] = clip
        cursor += duration + 1.0

    def build(transmissions: list[Transmission]) -> list[Window]:
        windows = []
        for plan in plan_packs(transmissions, pack):
            pieces = [(p.offset_s, p.end_s, texts[spans[p.transmission.idx].path]) for p in plan.placements]
            labels = labeller.window(pieces)
            if len(labels) > MAX_LABEL_TOKENS and len(plan.placements) > 1:
                half = len(plan.placements) // 2
                members = [p.transmission for p in plan.placements]
                windows += build(members[:half]) + build(members[half:])
                continue
            placements = [(spans[p.transmission.idx].path, p.offset_s) for p in plan.placements]
            windows.append(Window(render(placements, audio, plan.duration_s), labels, placements))
        return windows

    return build(timeline)


def render(placements: Sequence[tuple[Path, float]], audio: dict[Path, np.ndarray], duration_s: float,
           radio: Optional[np.random.Generator] = None) -> np.ndarray:
    """A window's samples: each clip at its offset, digital silence between. With `radio`,
    each clip goes through the radio channel (intercept.channel) first and is laid so that
    its speech stays where the label's timestamps put it: the keyed hiss before it and the
    squelch tail after it fall into the gaps, as on the air."""
    from .channel import SNR_RANGE_DB, radio_transmission

    limit = int(30.0 * SAMPLE_RATE)
    samples = np.zeros(int(round(duration_s * SAMPLE_RATE)), dtype=np.float32)
    for path, offset_s in placements:
        chunk, at = audio[path], int(round(offset_s * SAMPLE_RATE))
        if radio is not None and np.any(chunk):
            keyed, speech_at, _ = radio_transmission(chunk.astype(np.float64), float(radio.uniform(*SNR_RANGE_DB)), radio)
            chunk, at = np.clip(keyed, -1, 1).astype(np.float32), at - speech_at
            if at < 0:
                chunk, at = chunk[-at:], 0
        end = min(at + len(chunk), limit)
        if end > len(samples):
            samples = np.concatenate([samples, np.zeros(end - len(samples), dtype=np.float32)])
        samples[at:end] += chunk[: end - at]
    return samples


# ---------------------------------------------------------------- model


def load_base(base: str):
    """(transformers Whisper in float32, WhisperProcessor, CTranslate2 directory, its hash)."""
    from .convert import load_hf_whisper

    source = resolve_model(base, allow_download=False)
    model, processor = load_hf_whisper(source.path)
    return model, processor, Path(source.path), sha256_of(Path(source.path) / "model.bin")


def _features(processor, audio: np.ndarray):
    return processor.feature_extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features


def _batches(count: int, size: int, rng: random.Random) -> list[list[int]]:
    order = list(range(count))
    rng.shuffle(order)
    return [order[i: i + size] for i in range(0, count, size)]


def _padded(label_lists: Sequence[list[int]], eot: int):
    """(decoder input ids, labels) for teacher forcing; padding and the prompt's language and
    task tokens are not scored (-100): they are given, not predicted."""
    import torch

    length = max(len(labels) for labels in label_lists) - 1
    inputs = torch.full((len(label_lists), length), eot, dtype=torch.long)
    targets = torch.full((len(label_lists), length), -100, dtype=torch.long)
    for row, labels in enumerate(label_lists):
        seq = torch.tensor(labels, dtype=torch.long)
        inputs[row, : len(seq) - 1] = seq[:-1]
        targets[row, : len(seq) - 1] = seq[1:]
        targets[row, :2] = -100  # <|fa|>, <|transcribe|>
    return inputs, targets


def window_loss(model, processor, windows: Sequence[Window]) -> float:
    """Mean cross-entropy of the model on the windows' labels (teacher forcing), no training."""
    import torch

    eot = processor.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.eval()
    with torch.no_grad():
        features = torch.cat([_features(processor, w.audio) for w in windows])
        inputs, targets = _padded([w.labels for w in windows], eot)
        device = next(model.parameters()).device
        out = model(input_features=features.to(device), decoder_input_ids=inputs.to(device), labels=targets.to(device))
    return float(out.loss)


def save_checkpoint(model, processor, folder: Path, epoch: int) -> Path:
    """Write epoch N's model beside the previous one, then drop the previous: a Ctrl-C or a
    crash at any moment leaves one complete checkpoint."""
    target = folder / f"epoch-{epoch}"
    partial = folder / f".epoch-{epoch}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    processor.save_pretrained(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    for old in folder.glob("epoch-*"):
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return target


def train(model, processor, windows: Sequence[Window], options: AdaptOptions, checkpoints: Path,
          radio_windows: Optional[Sequence[Window]] = None, log: Callable[[str], None] = print) -> dict:
    """Fine-tune `model` in place on the windows; returns losses and timings. With
    train="decoder" the encoder is frozen and run once per window (and once per radio copy);
    with "audio" and "decoder+audio" the layers below the trained ones are."""
    import torch
    from tqdm import tqdm
    from transformers import get_linear_schedule_with_warmup

    device = torch.device(options.device)
    torch.manual_seed(options.seed)
    rng = random.Random(options.seed)
    eot = processor.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.to(device)
    views = [list(windows)] + ([list(radio_windows)] if radio_windows else [])
    timings = {"encode_s": 0.0, "encode_cpu_s": 0.0}

    # Inputs per view: mel features (whole-model training), cached encoder outputs (decoder),
    # or the cached output of the encoder's frozen lower layers (audio).
    started, cpu = time.perf_counter(), time.process_time()
    cached = []
    encoder = model.model.encoder
    freeze = options.train != "encoder"
    top = min(options.audio_layers, len(encoder.layers)) if options.train in ("audio", "decoder+audio") else 0
    if freeze:
        for param in encoder.parameters():
            param.requires_grad_(False)
        encoder.eval()
    if options.train == "audio":
        for param in model.model.decoder.parameters():
            param.requires_grad_(False)
    if top:
        for module in list(encoder.layers[len(encoder.layers) - top:]) + [encoder.layer_norm]:
            for param in module.parameters():
                param.requires_grad_(True)
    for v, view in enumerate(views):
        rows = []
        what = "encoding windows" + (" (radio copies)" if v else "")
        for window in tqdm(view, desc=what, unit="window", disable=not options.progress):
            features = _features(processor, window.audio)
            if top:
                with torch.no_grad():
                    rows.append(_encode_below(encoder, features.to(device), top)[0].to(torch.float16).cpu())
            elif freeze:
                with torch.no_grad():
                    rows.append(encoder(features.to(device)).last_hidden_state[0].to(torch.float16).cpu())
            else:
                rows.append(features[0])
        cached.append(rows)
    timings["encode_s"] = round(time.perf_counter() - started, 1)
    timings["encode_cpu_s"] = round(time.process_time() - cpu, 1)

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=options.learning_rate, weight_decay=options.weight_decay)
    steps_per_epoch = (len(windows) + options.batch_size - 1) // options.batch_size
    total = steps_per_epoch * options.epochs
    if options.max_steps:
        total = min(total, options.max_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(options.warmup_fraction * total), total)
    losses, step, checkpoint = [], 0, None
    started, cpu = time.perf_counter(), time.process_time()
    try:
        for epoch in range(1, options.epochs + 1):
            model.train()
            if freeze:
                encoder.eval()
                for layer in encoder.layers[len(encoder.layers) - top:] if top else ():
                    layer.train()
            epoch_loss, seen = 0.0, 0
            bar = tqdm(_batches(len(windows), options.batch_size, rng), desc=f"epoch {epoch}/{options.epochs}",
                       unit="batch", disable=not options.progress)
            for batch in bar:
                pick = [rng.randrange(len(views)) for _ in batch]
                inputs, targets = _padded([views[p][i].labels for p, i in zip(pick, batch)], eot)
                stacked = torch.stack([cached[p][i] for p, i in zip(pick, batch)]).to(device)
                if freeze:
                    from transformers.modeling_outputs import BaseModelOutput

                    hidden = _encode_top(encoder, stacked.float(), top) if top else stacked.float()
                    out = model(encoder_outputs=BaseModelOutput(last_hidden_state=hidden),
                                decoder_input_ids=inputs.to(device), labels=targets.to(device))
                else:
                    out = model(input_features=stacked, decoder_input_ids=inputs.to(device), labels=targets.to(device))
                out.loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                epoch_loss += float(out.loss.detach()) * len(batch)
                seen += len(batch)
                bar.set_postfix(loss=f"{epoch_loss / seen:.3f}")
                if options.max_steps and step >= options.max_steps:
                    break
            losses.append(round(epoch_loss / max(seen, 1), 4))
            log(f"epoch {epoch}: mean loss {losses[-1]}")
            checkpoint = save_checkpoint(model, processor, checkpoints, epoch)
            if options.max_steps and step >= options.max_steps:
                break
    except KeyboardInterrupt:
        raise AdaptInterrupted(checkpoint) from None
    timings["train_s"] = round(time.perf_counter() - started, 1)
    timings["train_cpu_s"] = round(time.process_time() - cpu, 1)
    return {"epoch_losses": losses, "steps": step, "windows": len(windows), "checkpoint": str(checkpoint),
            **timings}


def _encode_below(encoder, features, top: int):
    """transformers' WhisperEncoder.forward up to (not including) its top `top` layers."""
    import torch

    hidden = torch.nn.functional.gelu(encoder.conv1(features))
    hidden = torch.nn.functional.gelu(encoder.conv2(hidden)).permute(0, 2, 1)
    hidden = hidden + encoder.embed_positions.weight[: hidden.shape[1]]
    for layer in encoder.layers[: len(encoder.layers) - top]:
        hidden = layer(hidden, None)
    return hidden


def _encode_top(encoder, hidden, top: int):
    """The rest of WhisperEncoder.forward from _encode_below's output: its top layers and norm."""
    for layer in encoder.layers[len(encoder.layers) - top:]:
        hidden = layer(hidden, None)
    return encoder.layer_norm(hidden)


def weights_of(model) -> dict:
    """A copy of the model's floating-point weights, each tied weight once (Whisper's output
    projection is its token embedding)."""
    return {name: tensor.detach().clone() for name, tensor in _floating(model)}


def _floating(model):
    for name, tensor in list(model.named_parameters()) + list(model.named_buffers()):
        if tensor.is_floating_point():
            yield name, tensor


AUDIO_ATTENTION = ".encoder_attn"  # in the names of the decoder's cross-attention weights (transformers' Whisper)
ENCODER = "model.encoder."  # the start of the encoder's weight names (transformers' Whisper)


def blend_with_base(model, base_weights: dict, fraction: float, audio_attention: Optional[float] = None,
                    encoder: Optional[float] = None) -> None:
    """In place: each weight becomes fraction x its fine-tuned value + (1 - fraction) x the
    base's (AdaptOptions.blend); the decoder's attention to the audio takes `audio_attention`
    instead when given (AdaptOptions.blend_audio_attention), the encoder's weights `encoder`
    (AdaptOptions.blend_encoder). Frozen weights are equal in both and stay as they are."""
    import torch

    if fraction >= 1 and audio_attention in (None, 1) and encoder in (None, 1):
        return
    with torch.no_grad():
        for name, tensor in _floating(model):
            if encoder is not None and name.startswith(ENCODER):
                share = encoder
            elif audio_attention is not None and AUDIO_ATTENTION in name:
                share = audio_attention
            else:
                share = fraction
            if share >= 1:
                continue
            base = base_weights.get(name)
            if base is None or base.shape != tensor.shape:
                raise AdaptError(f"cannot blend with the base: its weight {name} is missing or of another shape")
            tensor.mul_(share).add_(base.to(tensor.device, tensor.dtype), alpha=1 - share)


def to_ctranslate2(model, processor, base_dir: Path, out: Path, quantization: Optional[str] = "float16") -> Path:
    """Write the trained model as a CTranslate2 Whisper directory (ctranslate2's own
    TransformersConverter, offline), with the base's tokenizer.json beside it so that every
    engine (and intercept.convert) can load it."""
    import ctranslate2

    with tempfile.TemporaryDirectory(prefix="intercept-adapt-") as staging:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        shutil.copyfile(base_dir / "tokenizer.json", Path(staging) / "tokenizer.json")
        converter = ctranslate2.converters.TransformersConverter(
            staging, copy_files=["tokenizer.json"], load_as_float16=False)
        converter.convert(str(out), quantization=quantization, force=True)
    if not (out / "vocabulary.txt").is_file() and (out / "vocabulary.json").is_file():
        vocabulary = json.loads((out / "vocabulary.json").read_text(encoding="utf-8"))
        (out / "vocabulary.txt").write_text("\n".join(vocabulary), encoding="utf-8")
    return out


# ---------------------------------------------------------------- scoring


def score_model(model_dir: str | os.PathLike, clips: Sequence[Clip], beam_size: int = 5,
                radio_seed: Optional[int] = None, progress: bool = True, desc: str = "scoring",
                chunk: int = 64) -> ErrorCounts:
    """WER/CER of a CTranslate2 model on clips, packed the way `intercept run` packs a
    recording's transmissions: the product's faster-whisper engine (beam 5, float32: the
    decoding every adapted model of docs/adapt.md was gated and measured with; `run` decodes
    greedily since the fourteenth session), each clip
    one transmission, short transmissions packed into shared 30 s windows (intercept.packing).
    With radio_seed, each clip is first put through the radio channel (the same draw for every
    model scored with that seed)."""
    from tqdm import tqdm

    from .channel import through_radio
    from .engines import TranscribeOptions, load_engine

    engine = load_engine("faster-whisper", str(model_dir), str(model_dir),
                         TranscribeOptions(compute_type="float32", beam_size=beam_size))
    scorer, total = ErrorRateScorer(), ErrorCounts()
    bar = tqdm(total=len(clips), desc=desc, unit="clip", disable=not progress)
    for first in range(0, len(clips), chunk):
        # A run of clips as one recording: each clip a transmission, half a second apart.
        pieces, transmissions, cursor, scored = [], [], 0.0, []
        for n, clip in enumerate(clips[first: first + chunk], start=first):
            samples = _load(clip)
            if samples is None:
                continue
            if radio_seed is not None:
                samples = through_radio(samples, np.random.default_rng([radio_seed, n]))
            duration = len(samples) / SAMPLE_RATE
            transmissions.append(Transmission(len(scored), cursor, cursor + duration))
            pieces += [samples.astype(np.float32), np.zeros(SAMPLE_RATE // 2, dtype=np.float32)]
            cursor += duration + 0.5
            scored.append(clip)
        if scored:
            lines = engine.transcribe(np.concatenate(pieces), transmissions, SAMPLE_RATE)
            for i, clip in enumerate(scored):
                hypothesis = " ".join(line.text for line in lines if line.transmission_idx == i)
                total = total + scorer.score(clip.transcript, hypothesis)
        bar.update(min(chunk, len(clips) - first))
    bar.close()
    return total


# ---------------------------------------------------------------- the whole loop


def adapt(corpora: Sequence[str | os.PathLike], options: AdaptOptions,
          log: Callable[[str], None] = print) -> dict:
    """Fine-tune the base model on `corpora`, score it on the held-out part, and write the
    CTranslate2 model and its card into options.out; returns the card.

    Raises ModelWorseError (nothing written) when the model is worse than its base on the
    held-out part's WER and options.force is off; AdaptInterrupted on Ctrl-C."""
    out = Path(options.out).expanduser()
    if not corpora:
        raise AdaptError("no corpus given")
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as exc:
        raise AdaptError(f"intercept adapt trains with transformers and torch ({exc}): "
                         f"pip install 'intercept[transformers]'") from None
    clips = [c for folder in corpora for c in read_labelled(folder)]
    held = [c for folder in options.held_out for c in read_labelled(folder)]
    split = split_held_out(clips, options.held_out_fraction, options.seed, held)
    if not split.train:
        raise AdaptError("no training clip is left after holding out (every sentence is held out)")
    log(f"{len(split.train)} training clips, {len(split.held_out)} held out "
        f"({len(split.held_out_groups)} speaker/recording groups; "
        f"{split.dropped_shared_sentences} training clips dropped for sharing a held-out sentence)")

    shuffled = list(split.train)
    random.Random(options.seed).shuffle(shuffled)  # windows mix speakers and recordings
    from tqdm import tqdm

    audio = {c.path: s for c in tqdm(shuffled, desc="reading clips", unit="clip", disable=not options.progress)
             if (s := _load(c)) is not None}
    model, processor, base_dir, base_hash = load_base(options.base)
    labeller = Labeller(processor.tokenizer, options.language)
    windows = plan_windows(shuffled, audio, labeller, options.pack)
    if not windows:
        raise AdaptError("no training window: every clip was unreadable, longer than a window or too long a label")
    radio_windows = None
    if options.augment_radio:
        rng = np.random.default_rng(options.seed)
        radio_windows = [Window(render(w.placements, audio, len(w.audio) / SAMPLE_RATE, rng), w.labels, w.placements)
                         for w in windows]
    log(f"{len(windows)} training windows of up to {options.pack.window_s:g} s "
        f"({sum(w.clips for w in windows)} clips){' + radio copies' if radio_windows else ''}")

    out.mkdir(parents=True, exist_ok=True)
    checkpoints = out / CHECKPOINTS
    checkpoints.mkdir(exist_ok=True)
    blending = (options.blend < 1 or options.blend_audio_attention not in (None, 1)
                or options.blend_encoder not in (None, 1))
    base_weights = weights_of(model) if blending else None
    training = train(model, processor, windows, options, checkpoints, radio_windows, log)
    if base_weights is not None:
        # The checkpoints keep the weights as trained; only the written model is blended.
        blend_with_base(model, base_weights, options.blend, options.blend_audio_attention, options.blend_encoder)
        del base_weights
        own = [f"{share:g} for {what}" for share, what in ((options.blend_audio_attention, "the attention to the audio"),
                                                           (options.blend_encoder, "the encoder"))
               if share is not None]
        log(f"blended: {options.blend:g} of the fine-tuned weights, {1 - options.blend:g} of the base's"
            + (f" ({', '.join(own)})" if own else ""))

    staging = out / ".model.partial"
    shutil.rmtree(staging, ignore_errors=True)
    model.to("cpu").eval()
    to_ctranslate2(model, processor, base_dir, staging)
    started = time.perf_counter()
    before = score_model(base_dir, split.held_out, options.beam_size, progress=options.progress,
                         desc="held-out, base")
    after = score_model(staging, split.held_out, options.beam_size, progress=options.progress,
                        desc="held-out, adapted")
    training["score_s"] = round(time.perf_counter() - started, 1)
    card = {
        "format": "intercept-model-card", "version": 1,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "wer_before": round(before.wer, 4), "wer_after": round(after.wer, 4),
        "cer_before": round(before.cer, 4), "cer_after": round(after.cer, 4),
        "held_out_scores": {"before": before.to_dict(), "after": after.to_dict(),
                            "engine": "faster-whisper", "beam_size": options.beam_size,
                            "compute_type": "float32"},
        "base_model": {"name": options.base, "path": str(base_dir), "sha256": base_hash},
        "corpora": [{"path": str(Path(c).resolve()), "sha256": corpus_sha256(c)} for c in corpora],
        "held_out_corpora": [{"path": str(Path(c).resolve()), "sha256": corpus_sha256(c)} for c in options.held_out],
        "held_out_split": split.to_dict(),
        "settings": options.settings(),
        "training": training,
    }
    log(f"held-out WER {before.wer:.3f} -> {after.wer:.3f}, CER {before.cer:.3f} -> {after.cer:.3f} "
        f"({before.utterances} clips)")
    worse = after.wer > before.wer
    if worse and not options.force:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(checkpoints, ignore_errors=True)
        raise ModelWorseError(
            f"the adapted model is worse than its base on the held-out part (WER {before.wer:.3f} -> "
            f"{after.wer:.3f}); nothing written to {out} (--force writes it anyway)", card)
    card["written_although_worse"] = worse
    for item in staging.iterdir():
        os.replace(item, out / item.name)
    staging.rmdir()
    card_path = out / CARD
    partial = card_path.with_suffix(".json.partial")
    partial.write_text(json.dumps(card, ensure_ascii=False, indent=1), encoding="utf-8")
    os.replace(partial, card_path)
    return card
