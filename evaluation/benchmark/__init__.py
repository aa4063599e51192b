"""Benchmark of registered TTS/VC systems on one protocol: results model, evaluation read-back, report."""
