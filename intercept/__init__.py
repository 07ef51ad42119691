"""intercept: transcribe, translate and flag push-to-talk radio traffic for human review."""

__version__ = "0.1.0"
