"""Same voice across recordings: one voice embedding per transmission, grouped into voices.

Push-to-talk traffic has one speaker per transmission, so a transmission is the unit that gets
a voice. The embedding is resemblyzer's VoiceEncoder (256 numbers, L2-normed), whose weights ship
inside its wheel (no download). A transmission shorter than MIN_TRANSMISSION_S, or one in which
resemblyzer's own voice activity detector (webrtcvad, as its preprocess_wav uses it) leaves less
than MIN_SPEECH_S of speech, gets no embedding and so no voice: no guess. What the encoder hears
goes through a hiss gate first (hiss_gate, FRONT_END).

Grouping is incremental, so that voices keep their numbers across runs: a transmission without
a voice joins the voice whose centroid is most similar (cosine, after taking out what the
store's embeddings have in common: Standardizer) when that similarity reaches the threshold; the rest are grouped among themselves by average-linkage agglomerative clustering cut
at the same threshold, each group a new voice. Runs only ever place transmissions that have no
voice yet: what reviewers decided (names, merges, splits; store.py logs them in voice_decisions)
is never undone by a run. DEFAULT_THRESHOLD comes from scripts/bench_voices.py (docs/voices.md).

resemblyzer is an optional extra (`intercept[voices]`); `require()` says in one line how to
install it, before any work starts.
"""
from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

MODEL_NAME = "resemblyzer-voice-encoder"
EMBEDDING_SIZE = 256
ENCODER_RATE = 16000  # resemblyzer.hparams.sampling_rate
MIN_TRANSMISSION_S = 1.0
MIN_SPEECH_S = 0.5
ENCODER_THREADS = 1  # torch threads while embedding (VoiceEmbedder.partials says why)
# What every transmission goes through before the encoder (hiss_gate; chosen on the dev
# speakers of scripts/bench_voices.py, docs/benchmarks.md). The name tags the embeddings.
HISS_GATE_STRENGTH = 1.0
HISS_GATE_FLOOR = 0.03
FRONT_END = f"hiss gate {HISS_GATE_STRENGTH}/{HISS_GATE_FLOOR}"
# Cosine similarity (in the store's standardised space, see Standardizer) a transmission needs
# with a voice (or, on average, with a group) to be that voice. Chosen on the dev speakers of
# scripts/bench_voices.py; see docs/benchmarks.md.
DEFAULT_THRESHOLD = 0.25
# Per-dimension mean and spread of embeddings of real Persian speech (the dev speakers of
# scripts/bench_voices.py, as recorded and through the radio channel; --write-background).
BACKGROUND_PATH = Path(__file__).with_name("voice_background.json")
# How many transmissions the background counts as, against the store's own: a small store leans
# on the background, a large one on its own channel and speakers.
BACKGROUND_WEIGHT = 100
INSTALL_HINT = ("voice grouping needs the optional extra 'voices' (resemblyzer): run "
                "`scripts/setup.sh voices`, or see docs/voices.md")

# Why a transmission has no embedding.
SHORT = "short"  # shorter than MIN_TRANSMISSION_S
NO_SPEECH = "no_speech"  # the VAD leaves less than MIN_SPEECH_S of speech
EMBEDDED = "ok"


class VoicesUnavailable(RuntimeError):
    """The optional extra is not installed."""


def require() -> None:
    """Raise VoicesUnavailable (one line saying what to install) when resemblyzer or the
    webrtcvad module it imports is missing. Looks for them without importing torch."""
    for module in ("resemblyzer", "webrtcvad"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise VoicesUnavailable(f"{INSTALL_HINT} (module '{module}' not found)")


@dataclass
class VoicePrint:
    """What embedding one transmission gave: the vector (None when skipped), the status
    (ok | short | no_speech) and how much speech the VAD kept, in seconds."""

    status: str
    speech_s: float
    vector: Optional[np.ndarray] = None


def to_bytes(vector: np.ndarray) -> bytes:
    """Compact storage: float16, 512 bytes; cosine similarities change by < 1e-3."""
    return np.asarray(vector, dtype="<f2").tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype="<f2").astype(np.float32)


def _normalised(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def centroid(vectors: np.ndarray) -> np.ndarray:
    """The L2-normed mean of unit vectors: what a voice's members have in common."""
    return _normalised(np.mean(_normalised(np.asarray(vectors, dtype=np.float32)), axis=0))


def hiss_gate(wav: np.ndarray, strength: float = HISS_GATE_STRENGTH, floor: float = HISS_GATE_FLOOR) -> np.ndarray:
    """intercept.audio's spectral gate against steady hiss, at full strength: the front end
    every transmission goes through before the encoder. Why: the encoder hears a radio's keyed
    hiss as part of the voice; gated, the same speakers through the radio channel grouped with
    an adjusted Rand index of 0.71 instead of 0.65 on the dev speakers, and as recorded 0.84
    instead of 0.82 (docs/benchmarks.md, with the variants that lost)."""
    from .audio import CleanupOptions, clean_radio

    return clean_radio(wav, ENCODER_RATE, CleanupOptions(
        highpass_hz=None, normalize_peak=None, noise_reduction=True,
        noise_reduction_strength=strength, noise_floor_gain=floor))


def model_version(front_end: str = FRONT_END) -> str:
    """resemblyzer's version, its shipped weights' SHA-256 (first 12 hex digits) and the front
    end's name: what voices and embeddings are tagged with, so that embeddings of another model
    or front end are never compared with these."""
    require()
    spec = importlib.util.find_spec("resemblyzer")
    weights = Path(spec.origin).with_name("pretrained.pt")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]
    return f"resemblyzer {metadata.version('resemblyzer')}, weights sha256 {digest}, front end {front_end}"


class VoiceEmbedder:
    """resemblyzer's VoiceEncoder, loaded once, on the CPU unless told otherwise."""

    def __init__(self, device: str = "cpu", front_end: tuple[str, Optional[Callable]] = (FRONT_END, hiss_gate)):
        """front_end: (name, what the 16 kHz samples go through first, or None); the name
        becomes part of the embeddings' version (scripts/bench_voices.py tries others)."""
        require()
        from resemblyzer import VoiceEncoder, audio

        self._audio = audio
        self._front_end = front_end[1]
        self.encoder = VoiceEncoder(device=device, verbose=False)
        self.model = MODEL_NAME
        self.version = model_version(front_end[0])

    def partials(self, samples: np.ndarray, sample_rate: int = ENCODER_RATE) -> tuple[str, float, Optional[np.ndarray]]:
        """(status, seconds of speech, the encoder's partial embeddings or None): one per 1.6 s
        window of the speech, 1.3 windows a second (resemblyzer's embed_utterance)."""
        wav = np.asarray(samples, dtype=np.float32)
        if wav.size < MIN_TRANSMISSION_S * sample_rate:
            return SHORT, 0.0, None
        if sample_rate != ENCODER_RATE:
            import librosa

            wav = librosa.resample(wav, orig_sr=sample_rate, target_sr=ENCODER_RATE)
        if not np.any(wav):
            return NO_SPEECH, 0.0, None
        # resemblyzer's preprocess_wav without its resampling: volume up to -30 dBFS, then its
        # webrtcvad pass keeps the voiced stretches. Whether there is enough speech is judged
        # on the audio as received: gated hiss leaves bursts that the VAD takes for speech.
        speech = self._speech(wav)
        speech_s = round(speech.size / ENCODER_RATE, 3)
        if speech_s < MIN_SPEECH_S:
            return NO_SPEECH, speech_s, None
        if self._front_end is not None:
            speech = self._speech(self._front_end(wav))
        if speech.size < MIN_SPEECH_S * ENCODER_RATE:
            return NO_SPEECH, speech_s, None
        import torch

        # The encoder is small (3 LSTM layers over 1.6 s windows): on one thread it embedded
        # audio_samples' transmissions in 0.8 s; on torch's default threads (2), after the
        # recogniser had run in the same process on a busy machine, the same took 60 s
        # (docs/benchmarks.md). Set for the call only: torch's thread count is the process's,
        # and translators use it too.
        threads = torch.get_num_threads()
        torch.set_num_threads(ENCODER_THREADS)
        try:
            _, partials, _ = self.encoder.embed_utterance(speech, return_partials=True)
        finally:
            torch.set_num_threads(threads)
        return EMBEDDED, speech_s, np.asarray(partials, dtype=np.float32)

    def _speech(self, wav: np.ndarray) -> np.ndarray:
        return self._audio.trim_long_silences(self._audio.normalize_volume(wav, -30, increase_only=True))

    def embed(self, samples: np.ndarray, sample_rate: int = ENCODER_RATE) -> VoicePrint:
        """One transmission's samples (mono float) -> its VoicePrint: the L2-normed mean of
        its partial embeddings (what embed_utterance returns)."""
        status, speech_s, partials = self.partials(samples, sample_rate)
        if partials is None:
            return VoicePrint(status, speech_s)
        return VoicePrint(status, speech_s, centroid(partials))

    def embed_transmissions(self, samples: np.ndarray, sample_rate: int, transmissions: Iterable) -> list[VoicePrint]:
        """One VoicePrint per transmission (objects with .start and .end in seconds)."""
        return [self.embed(samples[int(t.start * sample_rate): int(t.end * sample_rate)], sample_rate)
                for t in transmissions]


# ---------------------------------------------------------------- grouping (pure)

def load_background(version: Optional[str] = None) -> Optional[tuple[np.ndarray, np.ndarray]]:
    """(mean, std) of the shipped background, or None when it is missing or was made with
    another model version than `version`."""
    import json

    try:
        data = json.loads(BACKGROUND_PATH.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if version is not None and data.get("model_version") != version:
        return None
    return np.asarray(data["mean"], dtype=np.float32), np.asarray(data["std"], dtype=np.float32)


class Standardizer:
    """Maps embeddings to the space voices are compared in: minus the mean, over the spread,
    per dimension, then L2-normed. Why: resemblyzer's embeddings of one channel share a large
    common part (through the radio channel, different speakers scored 0.75 and more cosine
    similarity), so raw cosine needs a threshold per channel. Taking the store's own mean and
    spread out lifted the adjusted Rand index on held-out speakers from 0.68 to 0.85 as recorded
    and from 0.43 to 0.59 through the radio channel (before the hiss gate; docs/benchmarks.md).
    The store's statistics are pooled with a background of real speech counted as
    BACKGROUND_WEIGHT transmissions, so a small store (one speaker, a few transmissions) is not
    centred on its own speaker."""

    def __init__(self, vectors: np.ndarray, background: Optional[tuple[np.ndarray, np.ndarray]] = None,
                 weight: float = BACKGROUND_WEIGHT):
        vectors = np.asarray(vectors, dtype=np.float64).reshape(-1, EMBEDDING_SIZE)
        count = len(vectors)
        if background is None:
            weight = 0.0
            background = (np.zeros(EMBEDDING_SIZE), np.ones(EMBEDDING_SIZE))
        mean_bg, std_bg = (np.asarray(b, dtype=np.float64) for b in background)
        if count + weight == 0:
            self.mean, self.std = mean_bg, std_bg
            return
        self.mean = (vectors.sum(axis=0) + weight * mean_bg) / (count + weight)
        spread = ((vectors - self.mean) ** 2).sum(axis=0) + weight * (std_bg ** 2 + (mean_bg - self.mean) ** 2)
        self.std = np.sqrt(spread / (count + weight))

    def __call__(self, vectors: np.ndarray) -> np.ndarray:
        moved = (np.asarray(vectors, dtype=np.float64) - self.mean) / (self.std + 1e-3)
        return _normalised(moved).astype(np.float32)


def cluster(vectors: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> list[int]:
    """Group unit vectors: average-linkage agglomerative clustering on cosine distance, cut
    where the mean similarity between two groups falls below `threshold`. Labels 0..k-1 in
    order of first appearance."""
    count = len(vectors)
    if count == 0:
        return []
    if count == 1:
        return [0]
    from scipy.cluster.hierarchy import fcluster, linkage

    tree = linkage(_normalised(np.asarray(vectors, dtype=np.float64)), method="average", metric="cosine")
    raw = fcluster(tree, t=1.0 - threshold, criterion="distance")
    order: dict[int, int] = {}
    return [order.setdefault(int(label), len(order)) for label in raw]


@dataclass
class Placement:
    """Where grouping puts transmissions: into existing voices, or into new groups."""

    joined: dict[int, int] = field(default_factory=dict)  # transmission id -> existing voice id
    new_groups: list[list[int]] = field(default_factory=list)  # transmission ids per new voice


def place(
    new: Sequence[tuple[int, np.ndarray]],
    voices: Sequence[tuple[int, np.ndarray]],
    threshold: float = DEFAULT_THRESHOLD,
) -> Placement:
    """Place transmissions (id, vector) without a voice: each joins the most similar voice
    (id, centroid) when the similarity reaches `threshold`; the others are clustered among
    themselves into new groups."""
    placement = Placement()
    left: list[tuple[int, np.ndarray]] = []
    if voices and new:
        centroids = _normalised(np.stack([c for _, c in voices]).astype(np.float32))
        similarity = _normalised(np.stack([v for _, v in new]).astype(np.float32)) @ centroids.T
        best = np.argmax(similarity, axis=1)
        for row, (tx_id, vector) in enumerate(new):
            if similarity[row, best[row]] >= threshold:
                placement.joined[tx_id] = voices[best[row]][0]
            else:
                left.append((tx_id, vector))
    else:
        left = list(new)
    if left:
        labels = cluster(np.stack([v for _, v in left]), threshold)
        groups: list[list[int]] = [[] for _ in range(max(labels) + 1)]
        for (tx_id, _), label in zip(left, labels):
            groups[label].append(tx_id)
        placement.new_groups = groups
    return placement


def group(vectors: np.ndarray, voice_of: Sequence[Optional[int]], open_voices: Iterable[int],
          threshold: float = DEFAULT_THRESHOLD, background=None) -> Placement:
    """Place, by index, every embedding whose voice_of is None, given all embeddings of a store
    (raw, as stored) and the voice each already has. Members of `open_voices` make the voices'
    centroids; everything is compared in the Standardizer space of all the store's embeddings."""
    if len(vectors) == 0:
        return Placement()
    space = Standardizer(vectors, background)
    moved = space(vectors)
    open_voices = set(open_voices)
    members: dict[int, list[np.ndarray]] = {}
    new = []
    for index, (vector, voice) in enumerate(zip(moved, voice_of)):
        if voice is None:
            new.append((index, vector))
        elif voice in open_voices:
            members.setdefault(voice, []).append(vector)
    return place(new, [(voice, centroid(np.stack(found))) for voice, found in sorted(members.items())], threshold)


# ---------------------------------------------------------------- grouping in a store

@dataclass
class GroupingSummary:
    embedded: int = 0  # transmissions embedded by this call
    skipped_short: int = 0
    skipped_no_speech: int = 0
    joined: int = 0  # transmissions placed into existing voices
    new_voices: int = 0
    in_new_voices: int = 0
    voices: int = 0  # voices in the store afterwards (merged ones not counted)
    failures: list[tuple[str, str]] = field(default_factory=list)  # recordings that could not be read

    def to_dict(self) -> dict:
        return asdict(self)


def save_prints(store, recording_id: int, prints: dict[int, VoicePrint], model: str, version: str) -> None:
    """Store a recording's VoicePrints (by transmission idx), the vectors as float16 bytes."""
    store.save_voice_prints(
        recording_id,
        {idx: (p.status, p.speech_s, to_bytes(p.vector) if p.vector is not None else None) for idx, p in prints.items()},
        model, version,
    )


def count_prints(prints: Iterable[VoicePrint], summary: GroupingSummary) -> None:
    for found in prints:
        if found.status == EMBEDDED:
            summary.embedded += 1
        elif found.status == SHORT:
            summary.skipped_short += 1
        else:
            summary.skipped_no_speech += 1


def refresh_centroids(store, voice_ids: Iterable[int]) -> None:
    """Recompute each voice's centroid and size from its members' stored embeddings."""
    for voice_id in set(voice_ids):
        blobs = store.voice_member_embeddings(voice_id)
        vectors = np.stack([from_bytes(b) for b in blobs]) if blobs else None
        store.set_voice_centroid(voice_id, to_bytes(centroid(vectors)) if vectors is not None else None, len(blobs))


def group_voices(store, model: str, version: str, threshold: float = DEFAULT_THRESHOLD,
                 summary: Optional[GroupingSummary] = None) -> GroupingSummary:
    """Give a voice to every transmission of the store that has an embedding of this model
    version and no voice yet. Existing voices keep their ids and members."""
    summary = summary or GroupingSummary()
    rows = store.voice_embeddings(model, version)
    vectors = np.stack([from_bytes(row["embedding"]) for row in rows]) if rows else np.zeros((0, EMBEDDING_SIZE))
    by_index = group(vectors, [row["voice_id"] for row in rows], [v["id"] for v in store.open_voices(model, version)],
                     threshold, load_background(version))
    ids = [row["transmission_id"] for row in rows]
    placement = Placement({ids[i]: voice for i, voice in by_index.joined.items()},
                          [[ids[i] for i in found] for found in by_index.new_groups])
    created = store.place_in_voices(placement.joined, placement.new_groups, model, version)
    refresh_centroids(store, list(placement.joined.values()) + created)
    summary.joined += len(placement.joined)
    summary.new_voices += len(created)
    summary.in_new_voices += sum(len(g) for g in placement.new_groups)
    summary.voices = len(store.open_voices(model, version))
    return summary


def voices_for_store(
    store,
    threshold: float = DEFAULT_THRESHOLD,
    embedder: Optional[VoiceEmbedder] = None,
    on_recording: Optional[Callable[[str], None]] = None,
) -> GroupingSummary:
    """`intercept voices DB`: embed every transmission of the store that has no embedding of
    this model version (re-decoding its original recording from recordings.path), then group.
    A recording that cannot be read is one failure line naming it; the others go on."""
    from .audio import AudioError, decode

    embedder = embedder or VoiceEmbedder()
    summary = GroupingSummary()
    for recording in store.recordings_needing_embeddings(embedder.model, embedder.version):
        path = recording["path"]
        if on_recording:
            on_recording(path)
        try:
            audio = decode(path)
        except AudioError as exc:  # one unreadable original must not stop the others
            summary.failures.append((path, " ".join(str(exc).split())))
            continue
        samples, rate = audio.samples, audio.sample_rate
        transmissions = store.transmissions_of(recording["id"])
        prints = [embedder.embed(samples[int(t["start_s"] * rate): int(t["end_s"] * rate)], rate)
                  for t in transmissions]
        save_prints(store, recording["id"], {t["idx"]: p for t, p in zip(transmissions, prints)},
                    embedder.model, embedder.version)
        count_prints(prints, summary)
    return group_voices(store, embedder.model, embedder.version, threshold, summary)


# ---------------------------------------------------------------- reviewers' decisions

def merge_voices(store, source_id: int, target_id: int, reviewer: str) -> None:
    """Every transmission of voice `source_id` becomes `target_id`'s; the source is kept,
    marked merged, and no run places anything in it again."""
    store.merge_voices(source_id, target_id, reviewer)
    refresh_centroids(store, [target_id, source_id])


def split_voice(store, voice_id: int, transmission_ids: Sequence[int], reviewer: str,
                name: Optional[str] = None) -> int:
    """Move the given transmissions of a voice to a new voice; returns the new voice's id."""
    new_id = store.split_voice(voice_id, transmission_ids, reviewer, name=name)
    refresh_centroids(store, [voice_id, new_id])
    return new_id
