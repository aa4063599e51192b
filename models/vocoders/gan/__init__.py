"""GAN mel vocoders: the shared HiFi-GAN and BigVGAN-style (AMP) generators with the shared discriminators."""
