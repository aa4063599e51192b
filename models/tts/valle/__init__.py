"""VALL-E (Wang et al. 2023): neural codec language model for zero-shot TTS, checkpoint-compatible with
lifeiteng/vall-e and Amphion's VALL-E v1. See README.md."""
