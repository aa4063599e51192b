"""HierSpeech++ Text-to-Vec (TTV): phonemes + prosody prompt -> MMS-like semantic features and log-F0."""
