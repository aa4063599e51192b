"""SpeechSR (HierSpeech++): 16 kHz speech -> 24 or 48 kHz, checkpoint-compatible with the released models."""
