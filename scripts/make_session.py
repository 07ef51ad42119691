#!/usr/bin/env python3
"""Make a long synthetic radio session for benchmarks: sparse push-to-talk traffic.

    python scripts/make_session.py OUT.wav [--minutes 10] [--speech-fraction 0.13] [--seed 7]
    python scripts/make_session.py /tmp/2h.wav --minutes 120 --speech-fraction 0.03
    python scripts/make_session.py OUT.wav --speech-corpus ../shared/eval/fa_virgool

Transmissions are espeak-ng Farsi sentences (plain radio talk and animal-coded lines, from
SENTENCES below) or, with --speech-corpus, the clips of real speech of a corpus folder in
the format of scripts/eval_wer.py (metadata.tsv; each clip once, in a seeded random order,
again from the start when the session needs more; their transcripts are not checked
against the lexicon, so the manifest gives them no concepts) through the radio channel of scripts/make_samples.py (band-pass,
compression, hiss, key clicks, squelch tail), separated by squelched near-silence whose
lengths are drawn so that speech fills about --speech-fraction of the file. Writes OUT
(wav, mp3 or ogg by its extension) and OUT's name + ".json": the manifest, in the format of
audio_samples/manifest.json (one recording).

The signal is written to disk piece by piece, so a multi-hour session does not need to fit
in memory. Needs espeak-ng (not with --speech-corpus) and ffmpeg.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_samples import WORK_RATE, Utterance, near_silence, radio_transmission, synthesize  # noqa: E402

# (Farsi, English, concepts). Plain lines contain no lexicon form (checked by the
# benchmark scripts, which count flags on them as false flags).
SENTENCES = [
    ("امشب برویم ببینیم پرنده است یا روباه.", "Tonight let's go see whether it is a bird or a fox.", ["bird", "fox"]),
    ("گرگ‌ها از کوه پایین آمده‌اند. مراقب گله باشید.", "The wolves have come down from the mountain. Watch the flock.", ["wolf", "flock"]),
    ("کبوتر به لانه رسید.", "The pigeon reached the nest.", ["pigeon"]),
    ("روباه دیشب از کنار رودخانه رد شد.", "The fox passed by the river last night.", ["fox"]),
    ("سه پرنده فردا صبح پرواز می‌کنند.", "Three birds fly tomorrow morning.", ["bird"]),
    ("شاهین بالای تپه منتظر است.", "The falcon is waiting above the hill.", ["falcon"]),
    ("گرگ را دیدید؟ چند تا بودند؟", "Did you see the wolf? How many were there?", ["wolf"]),
    ("مار زیر سنگ پنهان شده است.", "The snake is hidden under the rock.", ["snake"]),
    ("ایستگاه دو، ایستگاه دو، اینجا ایستگاه یک. صدای مرا دارید؟", "Station two, this is station one. Do you hear me?", []),
    ("ایستگاه یک، صدای شما واضح است. به گوشم.", "Station one, your voice is clear. Go ahead.", []),
    ("هوا بارانی است و جاده لغزنده شده.", "It is rainy and the road has become slippery.", []),
    ("ماشین را کنار مغازه پارک کردم.", "I parked the car next to the shop.", []),
    ("نان و پنیر برای صبحانه بخر.", "Buy bread and cheese for breakfast.", []),
    ("دریافت شد. تمام.", "Received. Out.", []),
    ("فهمیدم. یک ساعت دیگر تماس می‌گیرم.", "Understood. I will call in an hour.", []),
    ("مادرم امروز به خانه برگشت.", "My mother came back home today.", []),
    ("باتری بی‌سیم ضعیف است، تکرار کنید.", "The radio battery is weak, repeat.", []),
    ("جلسه به هفته بعد موکول شد.", "The meeting was postponed to next week.", []),
]
VOICES = [("fa+m3", 50), ("fa+m1", 40), ("fa+f2", 60), ("fa+m2", 45)]


def clip_speech(path) -> np.ndarray:
    """A recorded clip at WORK_RATE, trimmed to its audible speech as synthesize() trims
    espeak-ng's (so the manifest's start/end are where speech begins and ends)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from intercept.audio import decode

    speech = decode(str(path), sample_rate=WORK_RATE).samples.astype(np.float64)
    loud = np.flatnonzero(np.abs(speech) > 0.02 * np.max(np.abs(speech)))
    return speech[loud[0]: loud[-1] + 1] if loud.size else speech[:0]


def real_speech(folder: str, rng: np.random.Generator) -> list[tuple[np.ndarray, str]]:
    """(samples at WORK_RATE, transcript) of every clip of a corpus folder, in a seeded random
    order."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from intercept.evaluate import read_corpus

    clips = [(clip_speech(item.path), item.transcript) for item in read_corpus(folder)]
    clips = [(speech, text) for speech, text in clips if speech.size]
    if not clips:
        raise SystemExit(f"make_session: no clips in {folder}")
    order = rng.permutation(len(clips))
    return [clips[i] for i in order]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output file: .wav, .mp3 or .ogg")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--speech-fraction", type=float, default=0.13,
                        help="share of the file that is keyed speech (default 0.13)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--speech-corpus", metavar="FOLDER",
                        help="real speech instead of espeak-ng: a folder with metadata.tsv (path, transcript)")
    args = parser.parse_args(argv)
    for tool in ("ffmpeg",) if args.speech_corpus else ("espeak-ng", "ffmpeg"):
        if shutil.which(tool) is None:
            print(f"make_session: {tool} is not installed", file=sys.stderr)
            return 2
    if not 0 < args.speech_fraction < 1:
        print("make_session: --speech-fraction must be between 0 and 1", file=sys.stderr)
        return 2
    out = Path(args.out)
    extension = out.suffix.lower().lstrip(".")
    if extension not in ("wav", "mp3", "ogg"):
        print(f"make_session: cannot write '{out}': extension must be .wav, .mp3 or .ogg", file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    clips = real_speech(args.speech_corpus, rng) if args.speech_corpus else None
    total = int(args.minutes * 60 * WORK_RATE)
    transmissions = []
    speech_cache: dict[tuple[int, int], np.ndarray] = {}
    with tempfile.TemporaryDirectory() as workdir:
        raw_path = out if extension == "wav" else Path(workdir) / "session.wav"
        out.parent.mkdir(parents=True, exist_ok=True)
        with wave.open(str(raw_path), "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(WORK_RATE)

            def write(piece: np.ndarray) -> None:
                writer.writeframes((np.clip(piece, -1.0, 1.0) * 32767).astype("<i2").tobytes())

            position = 0
            while True:
                if clips is not None:
                    speech, text_fa = clips[len(transmissions) % len(clips)]
                    text_en, concepts = "", []
                    utterance = Utterance(text_fa, text_en, snr_db=float(rng.uniform(10, 18)))
                else:
                    which = int(rng.integers(len(SENTENCES)))
                    voice, pitch = VOICES[int(rng.integers(len(VOICES)))]
                    text_fa, text_en, concepts = SENTENCES[which]
                    utterance = Utterance(text_fa, text_en, coded=bool(concepts), concepts=concepts, voice=voice,
                                          pitch=pitch, snr_db=float(rng.uniform(10, 18)))
                    key = (which, VOICES.index((voice, pitch)))
                    if key not in speech_cache:
                        speech_cache[key] = synthesize(utterance, workdir)
                    speech = speech_cache[key]
                audio, offset, length = radio_transmission(speech, utterance, rng)
                # Exponential gaps with the mean that gives the wanted share of speech (the
                # keyed hiss around it counts as non-speech).
                speech_s = length / WORK_RATE
                mean_gap = max(1.0, speech_s / args.speech_fraction - audio.size / WORK_RATE)
                gap = near_silence(rng, max(2.0, float(rng.exponential(mean_gap))))
                if position + gap.size + audio.size > total:
                    break
                write(gap)
                position += gap.size
                transmissions.append({
                    "start": round((position + offset) / WORK_RATE, 3),
                    "end": round((position + offset + length) / WORK_RATE, 3),
                    "text_fa": text_fa, "text_en": text_en, "coded": bool(concepts), "concepts": concepts,
                })
                write(audio)
                position += audio.size
            # Fill to the requested length, a minute at a time.
            while position < total:
                piece = near_silence(rng, min(60.0, (total - position) / WORK_RATE))
                write(piece)
                position += piece.size
        if extension != "wav":
            codec = {"mp3": ["-c:a", "libmp3lame", "-b:a", "24k"], "ogg": ["-c:a", "libopus", "-b:a", "32k"]}
            subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(raw_path),
                            *codec[extension], str(out)], check=True)
    speech_s = sum(t["end"] - t["start"] for t in transmissions)
    manifest = {
        "generator": "scripts/make_session.py",
        "seed": args.seed,
        "times": "seconds from the start of the file where each transmission's speech lies",
        "recordings": {out.name: {"description": f"{args.minutes:g} min session, {len(transmissions)} transmissions",
                                  "sample_rate": WORK_RATE, "duration": round(position / WORK_RATE, 3),
                                  "transmissions": transmissions}},
    }
    Path(str(out) + ".json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"{out}: {position / WORK_RATE / 60:.1f} min, {len(transmissions)} transmissions, "
          f"speech {speech_s:.0f} s ({100 * speech_s / (position / WORK_RATE):.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
