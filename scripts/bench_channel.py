#!/usr/bin/env python3
"""How much of the synthetic radio speech can the recogniser hear at all: word and character
error rates after each stage of the simulated radio channel, on the sentences of
scripts/make_samples.py (the speech of audio_samples/).

    .venv/bin/python scripts/bench_channel.py [--model base] [--seed 1]

Stages (each decoded alone by intercept's FasterWhisperEngine, beam 5, one window per
utterance, half a second of silence either side, peak-normalised):
  espeak-fa      espeak-ng's plain Farsi voice (`-v fa`), no channel
  espeak-voice   the voice variant, pitch and speed the sample uses (fa+m3, fa+f2, ...)
  band-pass      + 300-3400 Hz band-pass (the radio's audio band)
  compressed     + transmitter compression and soft clipping
  hiss           + band-limited hiss at the utterance's SNR (10-26 dB): what the samples hold

Why: on audio_samples/ every system writes mostly nonsense, so word error rates there say
more about how many words a system writes than about what it heard. This shows where
intelligibility is lost: a stage whose WER is already about 1 leaves word-level comparisons
between systems without meaning on that audio. Needs espeak-ng.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

STAGES = ("espeak-fa", "espeak-voice", "band-pass", "compressed", "hiss")


def channel_stages(utterance, rng: np.random.Generator, workdir: str) -> dict[str, np.ndarray]:
    """The utterance after each stage, following make_samples.radio_transmission's steps."""
    from scipy.signal import butter, sosfilt

    import make_samples as samples

    plain = samples.synthesize(samples.Utterance(utterance.text_fa, "", voice="fa"), workdir)
    voiced = samples.synthesize(utterance, workdir)
    band = sosfilt(butter(4, [300.0, 3400.0], btype="bandpass", fs=samples.WORK_RATE, output="sos"), voiced)
    band = band / (np.max(np.abs(band)) + 1e-12) * 0.7
    drive = rng.uniform(2.0, 3.5)
    compressed = np.tanh(drive * band) / np.tanh(drive) * 0.7
    hiss_rms = np.sqrt(np.mean(compressed ** 2)) / (10 ** (utterance.snr_db / 20.0))
    hissed = compressed + samples.band_noise(rng, compressed.size) * hiss_rms
    return dict(zip(STAGES, (plain, voiced, band, compressed, hissed)))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="base")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--show", action="store_true", help="print each utterance's text at the first and last stage")
    args = parser.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("bench_channel: espeak-ng is not installed", file=sys.stderr)
        return 2

    import make_samples as samples

    from intercept.engines import TranscribeOptions, load_engine
    from intercept.evaluate import ErrorRateScorer
    from intercept.models import resolve_model
    from intercept.types import Transmission

    engine = load_engine("faster-whisper", str(resolve_model(args.model).path), args.model,
                         TranscribeOptions(pack=False, compute_type="float32"))
    scorer = ErrorRateScorer()
    rng = np.random.default_rng(args.seed)
    pairs: dict[str, list[tuple[str, str]]] = {stage: [] for stage in STAGES}
    written = {stage: 0 for stage in STAGES}
    utterances = [u for recording in samples.RECORDINGS for u in recording.utterances]
    pad = np.zeros(samples.WORK_RATE // 2)
    with tempfile.TemporaryDirectory() as workdir:
        for utterance in utterances:
            for stage, speech in channel_stages(utterance, rng, workdir).items():
                audio = np.concatenate([pad, speech, pad])
                audio = (audio / (np.max(np.abs(audio)) + 1e-12) * 0.8).astype(np.float32)
                lines = engine.transcribe(audio, [Transmission(0, 0.0, audio.size / samples.WORK_RATE)],
                                          samples.WORK_RATE)
                text = " ".join(line.text for line in lines)
                pairs[stage].append((utterance.text_fa, text))
                written[stage] += len(scorer.words(text))
                if args.show and stage in (STAGES[0], STAGES[-1]):
                    print(f"{stage:13} {utterance.text_fa} -> {text}")
    reference_words = sum(len(scorer.words(u.text_fa)) for u in utterances)
    print(f"\n{len(utterances)} utterances of scripts/make_samples.py, {reference_words} words, model {args.model}\n")
    print("| stage | WER | CER | words written |")
    print("|---|---|---|---|")
    for stage in STAGES:
        counts = scorer.score_corpus(pairs[stage])
        print(f"| {stage} | {counts.wer:.3f} | {counts.cer:.3f} | {written[stage]} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
