"""Glow-WaveGAN: a VAE-GAN speech latent learned from waveform (stage 1) and a Glow-TTS flow model of it (stage 2)."""
