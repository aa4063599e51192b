"""Standalone vocoders trained on their own (mel -> waveform)."""
