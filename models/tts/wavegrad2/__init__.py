"""WaveGrad 2 (Chen et al., 2021): phonemes to waveform by iterative refinement; loads maum-ai/wavegrad2 checkpoints."""
