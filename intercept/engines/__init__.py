"""Speech recognition engines behind one small interface.

An engine turns the samples of one recording plus its transmissions into Lines whose
times are seconds in the original file. Engines hold a loaded model, so one engine object
is built per batch and reused for every recording.
"""
from __future__ import annotations

# The interface is in engines/base.py, where the adapters and core.py import it from; the
# package adds only the factory, which imports the adapters (so none of them imports the package).
from .base import DEVICES, ENGINES, Engine, TranscribeOptions, pack_options_for, resolve_device

__all__ = ["DEVICES", "ENGINES", "Engine", "TranscribeOptions", "load_engine", "pack_options_for", "resolve_device"]


def load_engine(name: str, model_path: str, model_name: str, options: TranscribeOptions) -> Engine:
    """Build the named engine over a resolved model directory."""
    if name == "faster-whisper":
        from .faster_whisper import FasterWhisperEngine

        return FasterWhisperEngine(model_path, model_name, options)
    if name == "openai-whisper":
        from .openai_whisper import OpenAIWhisperEngine

        return OpenAIWhisperEngine(model_path, model_name, options)
    if name == "transformers":
        from .transformers import TransformersEngine

        return TransformersEngine(model_path, model_name, options)
    raise ValueError(f"unknown engine '{name}' (choose from: {', '.join(ENGINES)})")
