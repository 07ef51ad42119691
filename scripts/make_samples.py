#!/usr/bin/env python3
"""Make the push-to-talk radio recordings in audio_samples/.

    python scripts/make_samples.py [--out audio_samples] [--seed 20240611] [--clips DIR]

Farsi speech comes from espeak-ng (`-v fa`, which reads Persian script) for the synthetic
recordings, and from real read speech for the two `real_speech_*` ones: clips of the CC-0
fa_virgool corpus (--clips, default /work/shared/eval/fa_virgool), three to a recording, one
clip a transmission. Without that folder the real-speech files already in --out are kept as
they are (with their manifest entries) and the script says so. Each transmission then goes
through a simulated radio channel:

  key-up click -> keyed carrier hiss -> speech (band-passed 300-3400 Hz, compressed and
  soft-clipped, with hiss) -> keyed hiss -> key-down click -> squelch tail (short noise
  burst) -> near-silence until the next transmission.

Everything random comes from seeded generators (one for the synthetic recordings, a second
one for the real-speech ones, so that adding these left the synthetic files byte for byte as
they were), so the same command makes the same files (given the same espeak-ng and ffmpeg
versions), byte for byte except the Opus ones (.ogg): libopus picks its SIMD code at run time,
so its bytes depend on the CPU (an Intel machine with AVX-512 made bird_or_fox.ogg 40 dB from
the AMD one's, decoded). The manifest records, per file, where
each transmission's *speech* lies (seconds), its Farsi text, an English gloss, whether it
uses coded language and which coded concepts it carries.

Needs: espeak-ng, ffmpeg (with libmp3lame and libopus), numpy, scipy.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import wave
from dataclasses import dataclass, field
from math import gcd

import numpy as np
from scipy.signal import resample_poly

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from intercept import channel  # noqa: E402

WORK_RATE = 16000  # the channel is simulated at 16 kHz; files may be written at 8 kHz


@dataclass
class Utterance:
    text_fa: str
    text_en: str
    coded: bool = False
    concepts: list = field(default_factory=list)
    voice: str = "fa+m3"
    speed_wpm: int = 150
    pitch: int = 50
    gap_before_s: float = 3.0  # near-silence before this transmission is keyed
    snr_db: float = 18.0  # speech-to-hiss ratio while keyed
    clip: str = ""  # real speech: this clip of the fa_virgool corpus instead of espeak-ng


@dataclass
class Recording:
    name: str
    extension: str  # mp3, ogg, wav
    sample_rate: int  # of the written file
    utterances: list
    tail_s: float = 3.0  # near-silence after the last transmission
    description: str = ""

    @property
    def speech(self) -> str:
        """Where the speech comes from, as the manifest records it."""
        return "fa_virgool" if any(u.clip for u in self.utterances) else "espeak-ng"


RECORDINGS = [
    Recording(
        name="session_long",
        extension="mp3",
        sample_rate=8000,
        description="A session of six transmissions separated by long silences (12-35 s).",
        tail_s=6.0,
        utterances=[
            Utterance("ایستگاه دو، ایستگاه دو، اینجا ایستگاه یک. صدای مرا دارید؟",
                      "Station two, station two, this is station one. Do you hear me?",
                      voice="fa+m3", gap_before_s=4.0, snr_db=16.0),
            Utterance("ایستگاه یک، صدای شما واضح است. به گوشم.",
                      "Station one, your voice is clear. Go ahead.",
                      voice="fa+m1", pitch=40, gap_before_s=12.0, snr_db=14.0),
            Utterance("گرگ‌ها از کوه پایین آمده‌اند. مراقب گله باشید.",
                      "The wolves have come down from the mountain. Watch the flock.",
                      coded=True, concepts=["wolf", "flock"],
                      voice="fa+m3", gap_before_s=25.0, snr_db=12.0),
            Utterance("فهمیدم. چند گرگ دیدید؟",
                      "Understood. How many wolves did you see?",
                      coded=True, concepts=["wolf"],
                      voice="fa+m1", pitch=40, gap_before_s=18.0, snr_db=15.0),
            Utterance("سه تا. فردا صبح دوباره تماس می‌گیرم.",
                      "Three. I will call again tomorrow morning.",
                      voice="fa+m3", gap_before_s=35.0, snr_db=10.0),
            Utterance("دریافت شد. تمام.",
                      "Received. Out.",
                      voice="fa+m1", pitch=40, gap_before_s=15.0, snr_db=14.0),
        ],
    ),
    Recording(
        name="bird_or_fox",
        extension="ogg",
        sample_rate=16000,
        description="An exchange of four transmissions with the coded line about a bird or a fox.",
        utterances=[
            Utterance("ستاره، ستاره، اینجا ماه. به گوشی؟",
                      "Star, star, this is Moon. Are you listening?",
                      voice="fa+m2", gap_before_s=2.5, snr_db=15.0),
            Utterance("به گوشم ماه. بگو.",
                      "Listening, Moon. Go on.",
                      voice="fa+f2", pitch=60, gap_before_s=4.0, snr_db=13.0),
            Utterance("امشب برویم ببینیم پرنده است یا روباه.",
                      "Tonight let's go and see whether it is a bird or a fox.",
                      coded=True, concepts=["bird", "fox"],
                      # A cleaner link for the coded line: through the full channel at 12 dB
                      # Whisper base heard no word of it; at 26 dB it hears "پرنده" and a
                      # garbled "رو گا" for روباه (measured; other voices/speeds heard less).
                      voice="fa+m3", speed_wpm=150, gap_before_s=5.0, snr_db=26.0),
            Utterance("باشد. اگر روباه بود، ساعت ده کنار پل.",
                      "All right. If it is a fox, ten o'clock by the bridge.",
                      coded=True, concepts=["fox"],
                      voice="fa+f2", pitch=60, speed_wpm=140, gap_before_s=6.0, snr_db=18.0),
        ],
    ),
    Recording(
        name="plain_traffic",
        extension="wav",
        sample_rate=8000,
        description="Ordinary traffic with no coded term: radio check, weather, food, fuel.",
        utterances=[
            Utterance("آزمایش بی‌سیم. یک، دو، سه. صدای مرا چطور می‌شنوید؟",
                      "Radio check. One, two, three. How do you hear me?",
                      voice="fa+m4", gap_before_s=3.0, snr_db=17.0),
            Utterance("صدای شما خوب است. هوا اینجا سرد و بارانی است.",
                      "Your voice is good. The weather here is cold and rainy.",
                      voice="fa+m1", pitch=45, gap_before_s=5.0, snr_db=14.0),
            Utterance("ناهار آماده است. نان و برنج داریم.",
                      "Lunch is ready. We have bread and rice.",
                      voice="fa+m4", gap_before_s=8.0, snr_db=12.0),
            Utterance("بنزین ماشین کم است. فردا باید بخریم.",
                      "The car is low on fuel. We must buy some tomorrow.",
                      voice="fa+m1", pitch=45, gap_before_s=6.0, snr_db=15.0),
        ],
    ),
    Recording(
        name="short_call",
        extension="wav",
        sample_rate=16000,
        description="One very short transmission (about one second).",
        tail_s=3.0,
        utterances=[
            Utterance("دریافت شد.", "Received.", voice="fa+m3", speed_wpm=160,
                      gap_before_s=2.0, snr_db=15.0),
        ],
    ),
]

# Real read speech (fa_virgool, CC-0): what a first run should show, since Whisper base barely
# recognises espeak-ng. text_fa is read from the corpus's metadata.tsv (the reference
# transcript); the English glosses are the project's. Kept out of RECORDINGS and made with a
# generator of their own so the synthetic files stay as they were.
REAL_SPEECH_CORPUS = "fa_virgool"
DEFAULT_CLIPS_DIR = "/work/shared/eval/fa_virgool"
REAL_SPEECH_SOURCE = ("fa_virgool: VirgoolInformal Speech Dataset, github.com/MahtaFetrat/"
                      "VirgoolInformal-Speech-Dataset commit 92fcceb0, sample_data; CC-0")
REAL_RECORDINGS = [
    Recording(
        name="real_speech_hardships",
        extension="mp3",
        sample_rate=16000,
        description="Real read speech (fa_virgool, CC-0): three transmissions about work and hardships; "
                    "no coded term, but 'پرده' (curtain) and 'می‌کشم' (I endure) sit near lexicon words.",
        utterances=[
            Utterance("", "...which is then even better, and we must, for the same audience, on the same product",
                      clip="clips/4-9.mp3", gap_before_s=2.5, snr_db=22.0),
            Utterance("", "The rest of the story in the next article: more about my work and how I feel about Bazlia",
                      clip="clips/2-270.mp3", gap_before_s=5.0, snr_db=18.0),
            Utterance("", "That is when the hardships I endure in Iran, and",
                      clip="clips/72-219.mp3", gap_before_s=4.0, snr_db=20.0),
        ],
    ),
    Recording(
        name="real_speech_work",
        extension="ogg",
        sample_rate=16000,
        description="Real read speech (fa_virgool, CC-0): three transmissions of ordinary talk about work.",
        utterances=[
            Utterance("", "They do not distract you in the middle of your work.",
                      clip="clips/3-254.mp3", gap_before_s=3.0, snr_db=20.0),
            Utterance("", "Also, we can use market and industry information",
                      clip="clips/14-58.mp3", gap_before_s=6.0, snr_db=16.0),
            Utterance("", "I do not know why, but the first thing that came to my mind was:",
                      clip="clips/1-10.mp3", gap_before_s=4.5, snr_db=22.0),
        ],
    ),
]


def synthesize(utterance: Utterance, workdir: str) -> np.ndarray:
    """espeak-ng speech at WORK_RATE, float32, with its leading/trailing silence trimmed."""
    wav_path = os.path.join(workdir, "tts.wav")
    subprocess.run(
        ["espeak-ng", "-v", utterance.voice, "-s", str(utterance.speed_wpm),
         "-p", str(utterance.pitch), "-w", wav_path, utterance.text_fa],
        check=True,
    )
    return read_trimmed(wav_path)


def real_speech(utterance: Utterance, clips_dir: str, workdir: str) -> np.ndarray:
    """A corpus clip, decoded by ffmpeg to mono 16-bit, at WORK_RATE, silence trimmed."""
    wav_path = os.path.join(workdir, "clip.wav")
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i",
         os.path.join(clips_dir, utterance.clip), "-ac", "1", "-ar", str(WORK_RATE), "-c:a", "pcm_s16le", wav_path],
        check=True,
    )
    return read_trimmed(wav_path)


def read_trimmed(wav_path: str) -> np.ndarray:
    """A 16-bit mono WAV file at WORK_RATE, leading/trailing silence trimmed."""
    with wave.open(wav_path, "rb") as reader:
        rate = reader.getframerate()
        pcm = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2")
    speech = pcm.astype(np.float64) / 32768.0
    divisor = gcd(WORK_RATE, rate)
    speech = resample_poly(speech, WORK_RATE // divisor, rate // divisor)
    # Trim so that the manifest's start/end are where audible speech begins and ends.
    loud = np.flatnonzero(np.abs(speech) > 0.02 * np.max(np.abs(speech)))
    return speech[loud[0]: loud[-1] + 1]


def band_noise(rng: np.random.Generator, count: int, low_hz=300.0, high_hz=3400.0) -> np.ndarray:
    return channel.band_noise(rng, count, low_hz, high_hz, sample_rate=WORK_RATE)


def radio_transmission(speech: np.ndarray, utterance: Utterance, rng: np.random.Generator):
    """One keyed transmission (intercept.channel, the channel `intercept adapt --augment-radio`
    trains on). Returns (audio, speech_offset_in_audio, speech_length)."""
    return channel.radio_transmission(speech, utterance.snr_db, rng, sample_rate=WORK_RATE)


def near_silence(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Squelched receiver: a faint noise floor (about -70 dBFS), not digital zero."""
    return rng.standard_normal(int(seconds * WORK_RATE)) * 10 ** (-70 / 20)


def build(recording: Recording, rng: np.random.Generator, workdir: str, clips_dir: str = ""):
    pieces = []
    transmissions = []
    position = 0
    for utterance in recording.utterances:
        gap = near_silence(rng, utterance.gap_before_s)
        pieces.append(gap)
        position += gap.size
        speech = real_speech(utterance, clips_dir, workdir) if utterance.clip else synthesize(utterance, workdir)
        audio, speech_offset, speech_len = radio_transmission(speech, utterance, rng)
        transmissions.append({
            "start": round((position + speech_offset) / WORK_RATE, 3),
            "end": round((position + speech_offset + speech_len) / WORK_RATE, 3),
            "text_fa": utterance.text_fa,
            "text_en": utterance.text_en,
            "coded": utterance.coded,
            "concepts": list(utterance.concepts),
        })
        if utterance.clip:
            transmissions[-1]["clip"] = f"{REAL_SPEECH_CORPUS}/{utterance.clip}"
        pieces.append(audio)
        position += audio.size
    pieces.append(near_silence(rng, recording.tail_s))
    signal = np.concatenate(pieces)
    signal = np.clip(signal, -1.0, 1.0)
    return signal, transmissions


def write_audio(signal: np.ndarray, recording: Recording, path: str, workdir: str) -> None:
    if recording.sample_rate != WORK_RATE:
        divisor = gcd(WORK_RATE, recording.sample_rate)
        signal = resample_poly(signal, recording.sample_rate // divisor, WORK_RATE // divisor)
    pcm = (np.clip(signal, -1.0, 1.0) * 32767).astype("<i2")
    raw_path = os.path.join(workdir, "signal.wav")
    with wave.open(raw_path, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(recording.sample_rate)
        writer.writeframes(pcm.tobytes())
    codec = {
        "mp3": ["-c:a", "libmp3lame", "-b:a", "24k"],
        "ogg": ["-c:a", "libopus", "-b:a", "32k"],
        "wav": ["-c:a", "pcm_s16le"],
    }[recording.extension]
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", raw_path,
         "-map_metadata", "-1", "-fflags", "+bitexact", "-flags:a", "+bitexact",
         *codec, path],
        check=True,
    )


def clip_transcripts(clips_dir: str) -> dict:
    """The corpus's reference transcript per clip path (metadata.tsv: path, duration_s, transcript)."""
    with open(os.path.join(clips_dir, "metadata.tsv"), encoding="utf-8", newline="") as handle:
        return {row["path"]: row["transcript"].strip() for row in csv.DictReader(handle, delimiter="\t")}


def manifest_entry(recording: Recording, signal: np.ndarray, transmissions: list) -> dict:
    entry = {
        "description": recording.description,
        "speech": recording.speech,
        "sample_rate": recording.sample_rate,
        "duration": round(signal.size / WORK_RATE, 3),
        "transmissions": transmissions,
    }
    if recording.speech == REAL_SPEECH_CORPUS:
        entry["source"] = REAL_SPEECH_SOURCE
    return entry


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="audio_samples", help="output folder (default: audio_samples)")
    parser.add_argument("--seed", type=int, default=20240611, help="random seed (default: 20240611)")
    parser.add_argument("--clips", default=DEFAULT_CLIPS_DIR,
                        help=f"the fa_virgool corpus folder, for the real-speech recordings (default: {DEFAULT_CLIPS_DIR})")
    args = parser.parse_args(argv)
    for tool in ("espeak-ng", "ffmpeg"):
        if shutil.which(tool) is None:
            print(f"make_samples: {tool} is not installed", file=sys.stderr)
            return 2
    os.makedirs(args.out, exist_ok=True)
    manifest_path = os.path.join(args.out, "manifest.json")
    previous = {}
    if os.path.exists(manifest_path):
        with open(manifest_path, encoding="utf-8") as handle:
            previous = json.load(handle).get("recordings", {})
    rng = np.random.default_rng(args.seed)
    manifest = {
        "generator": "scripts/make_samples.py",
        "seed": args.seed,
        "times": "seconds from the start of the file where each transmission's speech lies",
        "recordings": {},
    }
    with tempfile.TemporaryDirectory() as workdir:
        def make(recording: Recording, generator: np.random.Generator) -> None:
            signal, transmissions = build(recording, generator, workdir, args.clips)
            file_name = f"{recording.name}.{recording.extension}"
            write_audio(signal, recording, os.path.join(args.out, file_name), workdir)
            manifest["recordings"][file_name] = manifest_entry(recording, signal, transmissions)
            print(f"{file_name}: {signal.size / WORK_RATE:.1f} s, {len(transmissions)} transmissions "
                  f"({recording.speech})")

        for recording in RECORDINGS:
            make(recording, rng)
        if os.path.isfile(os.path.join(args.clips, "metadata.tsv")):
            transcripts = clip_transcripts(args.clips)
            real_rng = np.random.default_rng([args.seed, 1])
            for recording in REAL_RECORDINGS:
                for utterance in recording.utterances:
                    utterance.text_fa = transcripts[utterance.clip]
                make(recording, real_rng)
        else:
            for recording in REAL_RECORDINGS:
                file_name = f"{recording.name}.{recording.extension}"
                if file_name in previous and os.path.exists(os.path.join(args.out, file_name)):
                    manifest["recordings"][file_name] = previous[file_name]
                    print(f"{file_name}: kept as it is ({args.clips}/metadata.tsv not found)", file=sys.stderr)
                else:
                    print(f"{file_name}: not made ({args.clips}/metadata.tsv not found)", file=sys.stderr)
    with open(manifest_path, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, ensure_ascii=False, indent=2)
        handle.write("\n")
    return 0

if __name__ == "__main__":
    sys.exit(main())
