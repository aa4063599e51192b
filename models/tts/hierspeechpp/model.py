"""HierSpeech++ hierarchical speech synthesizer (official ``SynthesizerTrn``), checkpoint compatible.

Attribute names = official state-dict prefixes::

    emb_g        StyleEncoder              log-mel prompt -> style g (B, 256, 1)
    enc_p_l      SourceFilterEncoder       SSL + F0 -> top semantic prior (used at inference)
    flow_l       BiTFlow                   top semantic level <-> enc_p level
    enc_p        SourceFilterEncoder       semantic posterior (training only)
    enc_q        DualAudioEncoder          linear spec + wave -> acoustic posterior (training, f0_extraction)
    flow         BiTFlow                   enc_p level <-> acoustic latent
    mel_decoder  ProsodyMelDecoder         latent -> first 20 log-mel bins (training only)
    sn           SourceNetwork             latent -> excitation + log-F0
    dec          HierarchicalGenerator     latent + excitation -> 16 kHz waveform
    emb          Embedding(1, 256)         CFG null style (if cfg)

Voice conversion runs top-down: enc_p_l(source SSL, F0) -> flow_l^-1 -> flow^-1 -> sn -> dec, under the
prompt's style. The official method names and signatures (``voice_conversion_noise_control``,
``voice_conversion``, ``infer``, ``f0_extraction``) are kept; :meth:`convert` is the batched core.

Batching: with ``leaky_padding=False`` (default) the flows' attention and the style pooling ignore padded
frames and the generator runs per item on its own length, so an item's output does not depend on the
batch it is in. ``set_leaky_padding(True)`` reproduces the official numbers for padded batches.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import torch
from torch import nn

from models.base.building import BuiltFromConfig, config_of_arguments
from models.tts.hierspeechpp.config import HierSpeechPPConfig
from models.tts.hierspeechpp.encoders import (
    DualAudioEncoder,
    ProsodyMelDecoder,
    SourceFilterEncoder,
    lengths_to_mask,
)
from models.tts.hierspeechpp.generator import HierarchicalGenerator, SourceNetwork
from modules.alias_free import set_polyphase
from modules.dit_flow import BiTFlow
from modules.onednn_linear import use_onednn_linear
from modules.style_encoder import StyleEncoder
from modules.vocoders.amp import set_channels_last_inference, set_vocoder_precision
from modules.weight_norm import fold_weight_norm
from utils.memory import keep_freed_memory
from utils.registry import register

# Fixed by the official constructor: encoder WaveNet depth/kernels and flow depth.
_ENC_KERNEL, _ENC_DILATION, _ENC_LAYERS = 5, 1, 16
_FLOW_KERNEL, _FLOW_BLOCKS, _FLOW_COUPLINGS, _FLOW_HEADS = 5, 3, 4, 2


@register("model", "hierspeechpp")
class HierSpeechPPSynthesizer(BuiltFromConfig, nn.Module):
    """The hierarchical variational synthesizer; built by :func:`models.base.building.build_model` /
    :meth:`from_config` from a :class:`HierSpeechPPConfig` (the fields' meaning and defaults are there).

    Training-relevant submodules (call signatures; T latent frames, hop 320):
        ``emb_g(mel (B,80,T'), mask (B,1,T')) -> (B, gin)``;
        ``enc_q(linear (B,641,T), audio (B,1,320T), lengths (B,), g, noise=None) -> z, m, logs, mask``;
        ``enc_p / enc_p_l(ssl (B,1024,T), log_f0 (B,1,4T), lengths, g, noise=None) -> z, m, logs, mask``;
        ``flow / flow_l(x (B,192,T), mask (B,1,T), g (B,gin,1), reverse=False) -> (B,192,T)``;
        ``mel_decoder(z, mask, g) -> (B, prosody_size, T)``; ``sn(z, g) -> (e (B,uic/8,4T), log_f0_hat (B,1,4T))``;
        ``dec(z, e, g) -> (B, 1, 320T)``; ``null_style(B) -> (B, gin, 1)``.
    """

    config_class = HierSpeechPPConfig

    def __init__(self, *, inter_channels: int, hidden_channels: int, filter_channels: int,
                 resblock_kernel_sizes: List[int], resblock_dilation_sizes: List[List[int]], upsample_rates: List[int],
                 upsample_initial_channel: int, upsample_kernel_sizes: List[int], gin_channels: int, cfg: bool,
                 uncond_ratio: float, prosody_size: int, spec_channels: int, segment_frames: int, ssl_channels: int,
                 n_mel_channels: int, leaky_padding: bool) -> None:
        super().__init__()
        self.config = cfg = config_of_arguments(HierSpeechPPConfig, locals())
        self.hop_length = cfg.hop_length
        gin, inter, hidden = cfg.gin_channels, cfg.inter_channels, cfg.hidden_channels
        self.enc_p_l = SourceFilterEncoder(cfg.ssl_channels, inter, hidden, _ENC_KERNEL, _ENC_DILATION, _ENC_LAYERS, gin)
        self.flow_l = self._make_flow(cfg)
        self.enc_p = SourceFilterEncoder(cfg.ssl_channels, inter, hidden, _ENC_KERNEL, _ENC_DILATION, _ENC_LAYERS, gin)
        self.enc_q = DualAudioEncoder(cfg.spec_channels, inter, hidden, _ENC_KERNEL, _ENC_DILATION, _ENC_LAYERS, gin)
        self.flow = self._make_flow(cfg)
        self.mel_decoder = ProsodyMelDecoder(inter, cfg.filter_channels, n_heads=2, n_layers=2, kernel_size=5,
                                             p_dropout=0.1, mel_size=cfg.prosody_size, gin_channels=gin)
        self.dec = HierarchicalGenerator(inter, cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes,
                                         cfg.upsample_rates, cfg.upsample_initial_channel, cfg.upsample_kernel_sizes,
                                         gin_channels=gin)
        self.sn = SourceNetwork(cfg.upsample_initial_channel // 2, in_channels=inter, gin_channels=gin)
        self.emb_g = StyleEncoder(in_dim=cfg.n_mel_channels, hidden_dim=256, out_dim=gin,
                                  leaky_padding=cfg.leaky_padding)
        if cfg.cfg:
            self.emb = nn.Embedding(1, gin)
            nn.init.normal_(self.emb.weight, 0.0, gin**-0.5)

    TRAINING_ONLY = ("enc_p", "enc_q", "mel_decoder")  # submodules no inference path calls

    def drop_training_modules(self) -> "HierSpeechPPSynthesizer":
        """Remove ``enc_p``, ``enc_q`` and ``mel_decoder`` (33.4 M of the released model's 97 M parameters), which
        only training and ``f0_extraction`` use: for inference-only copies (VC, TTS), before their weights load."""
        for name in self.TRAINING_ONLY:
            setattr(self, name, None)
        return self

    @staticmethod
    def _make_flow(cfg: HierSpeechPPConfig) -> BiTFlow:
        return BiTFlow(cfg.inter_channels, cfg.hidden_channels, _FLOW_KERNEL, _FLOW_BLOCKS, _FLOW_COUPLINGS,
                       cfg.gin_channels, n_heads=_FLOW_HEADS, p_dropout=0.1, leaky_padding=cfg.leaky_padding)

    # ------------------------------------------------------------------ switches
    def set_leaky_padding(self, leaky: bool) -> None:
        """True: official padding leaks (flows' attention, style pooling); False: padding-exact batching."""
        self.config.leaky_padding = leaky
        self.flow.set_leaky_padding(leaky)
        self.flow_l.set_leaky_padding(leaky)
        self.emb_g.leaky_padding = leaky

    def prepare_for_inference(self, polyphase: bool = True, channels_last: bool = True,
                              vocoder_precision: Optional[str] = None) -> "HierSpeechPPSynthesizer":
        """Eval mode, weight norm folded, and the faster paths that compute the same numbers (to float rounding).

        Args:
            polyphase: polyphase anti-aliasing (modules/alias_free.py) wherever an activation runs unfused.
            channels_last: AMP blocks in channels-last memory with the fused anti-aliased SnakeBeta kernel
                for CPU float32 calls (modules/fused_snake.py); other devices and dtypes are unaffected.
            vocoder_precision: ``"float32"`` or the opt-in ``"bfloat16"`` for those blocks' convolutions
                (:func:`modules.vocoders.amp.set_vocoder_precision`: faster, not the reference numbers); None
                keeps what the model has (float32 unless set before).

        Linear layers (the flows' attention and adaLN) run through oneDNN on CPU (modules/onednn_linear.py).
        """
        self.eval()
        fold_weight_norm(self)
        set_polyphase(self, polyphase)
        set_channels_last_inference(self, channels_last)
        if vocoder_precision is not None:
            set_vocoder_precision(self, vocoder_precision)
        use_onednn_linear(self)
        keep_freed_memory()
        return self

    # ------------------------------------------------------------------ building blocks
    def style(self, mel: torch.Tensor, mel_lengths: torch.Tensor) -> torch.Tensor:
        """``mel (B, 80, Tm)``, ``mel_lengths (B,)`` -> style ``(B, gin, 1)``."""
        mask = lengths_to_mask(mel_lengths, mel.size(2), mel.dtype)
        return self.emb_g(mel, mask).unsqueeze(-1)

    def null_style(self, batch: int) -> torch.Tensor:
        """CFG unconditional style ``emb(0) * sqrt(gin)`` as ``(B, gin, 1)``."""
        if not hasattr(self, "emb"):
            raise RuntimeError("this model was built with cfg=false: it has no null-style embedding")
        index = torch.zeros(batch, dtype=torch.long, device=self.emb.weight.device)
        return (self.emb(index) * math.sqrt(self.emb.weight.size(1))).unsqueeze(-1)

    def decode(self, z: torch.Tensor, lengths: torch.Tensor, g: torch.Tensor,
               g_dec: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Source network + generator: ``z (B, C, T)`` -> ``(wav (B,1,hop*T), e (B,·,4T), log_f0_hat (B,1,4T))``.

        ``g_dec`` (default ``g``) conditions sn and dec. Items shorter than ``T`` are decoded on their own
        length (convolutions and anti-aliasing filters then see the true signal edge, as for B=1) and the
        outputs are zero beyond it.
        """
        g_dec = g if g_dec is None else g_dec
        frames = z.size(2)
        lengths = lengths.to(torch.long)
        if bool((lengths == frames).all()):
            e, f0_hat = self.sn(z, g_dec)
            return self.dec(z, e, g=g_dec), e, f0_hat
        wav = z.new_zeros(z.size(0), 1, frames * self.hop_length)
        e_all = z.new_zeros(z.size(0), self.sn.out_channels, 4 * frames)
        f0_all = z.new_zeros(z.size(0), 1, 4 * frames)
        for b in range(z.size(0)):
            n = int(lengths[b])
            if n == 0:
                continue
            e, f0_hat = self.sn(z[b:b + 1, :, :n], g_dec[b:b + 1])
            wav[b:b + 1, :, :n * self.hop_length] = self.dec(z[b:b + 1, :, :n], e, g=g_dec[b:b + 1])
            e_all[b:b + 1, :, :4 * n] = e
            f0_all[b:b + 1, :, :4 * n] = f0_hat
        return wav, e_all, f0_all

    # ------------------------------------------------------------------ inference paths
    @torch.no_grad()
    def convert(
        self,
        ssl: torch.Tensor,
        lengths: torch.Tensor,
        log_f0: torch.Tensor,
        g: torch.Tensor,
        noise_scale: float = 0.333,
        g_dec: Optional[torch.Tensor] = None,
        noise: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Batched voice conversion from a given style.

        Args:
            ssl: ``(B, 1024, T)`` source SSL features (zero-padded); lengths: ``(B,)`` valid frames.
            log_f0: ``(B, 1, 4T)`` ln(F0+1) re-targeted to the prompt, unvoiced 0.
            g: ``(B, gin, 1)`` style for the latent hierarchy; g_dec: style for sn/dec (default g).
            noise_scale: temperature of the prior sample.
            noise: optional ``(B, inter, T)`` standard-normal draw (default fresh).

        Returns a dict: ``wav (B,1,hop*T)``, ``m_p``, ``logs_p``, ``z_after_flow_l``, ``z_after_flow``,
        ``sn_e``, ``sn_f0``, ``mask``.
        """
        _, m_p, logs_p, y_mask = self.enc_p_l(ssl, log_f0, lengths, g=g)
        if noise is None:
            noise = torch.randn_like(m_p)
        z = (m_p + noise * torch.exp(logs_p) * noise_scale) * y_mask
        z_l = self.flow_l(z, y_mask, g=g, reverse=True)
        z_a = self.flow(z_l, y_mask, g=g, reverse=True)
        wav, e, f0_hat = self.decode(z_a, lengths, g, g_dec)
        return {"wav": wav, "m_p": m_p, "logs_p": logs_p, "z_after_flow_l": z_l, "z_after_flow": z_a,
                "sn_e": e, "sn_f0": f0_hat, "mask": y_mask}

    @torch.no_grad()
    def voice_conversion_noise_control(self, src, src_length, trg_mel, trg_length, f0, noise_scale: float = 0.333,
                                       uncond: bool = False, denoise_ratio: float = 0.0, noise=None) -> torch.Tensor:
        """Official VC entry: ``trg_mel`` holds [original prompts; denoised prompts] (2B rows).

        The style is ``(1 - denoise_ratio) * g_original + denoise_ratio * g_denoised``. As in the official
        code, ``uncond`` has no effect here (use :meth:`voice_conversion`). Returns ``(B, 1, hop*T)``.
        """
        batch = src.size(0)
        if trg_mel.size(0) != 2 * batch:
            raise ValueError(f"voice_conversion_noise_control: trg_mel needs 2 x {batch} rows (original, "
                             f"denoised), got {trg_mel.size(0)}")
        if denoise_ratio == 0:  # (1 - 0) g + 0 g_denoised is g: the denoised rows need not be run
            g = self.style(trg_mel[:batch], trg_length[:batch])
        else:
            g = self.style(trg_mel, trg_length)
            g = (1 - denoise_ratio) * g[:batch] + denoise_ratio * g[batch:]
        return self.convert(src, src_length, f0, g, noise_scale, noise=noise)["wav"]

    @torch.no_grad()
    def voice_conversion(self, src, src_length, trg_mel, trg_length, f0, noise_scale: float = 0.333,
                         uncond: bool = False, noise=None) -> torch.Tensor:
        """Official VC with one prompt per source; ``uncond`` gives sn/dec the CFG null style."""
        g = self.style(trg_mel, trg_length)
        g_dec = self.null_style(src.size(0)) if uncond else None
        return self.convert(src, src_length, f0, g, noise_scale, g_dec=g_dec, noise=noise)["wav"]

    @torch.no_grad()
    def infer(self, x_mel, w2v, length, f0, noise=None) -> Tuple[torch.Tensor, torch.Tensor]:
        """Resynthesis: style from ``x_mel`` (same frames as ``w2v``), full prior sample (``noise`` injectable).

        Returns ``(wav (B,1,hop*T), log_f0_hat (B,1,4T))``.
        """
        g = self.style(x_mel, length)
        z, _, _, x_mask = self.enc_p_l(w2v, f0, length, g=g, noise=noise)
        z = self.flow_l(z, x_mask, g=g, reverse=True)
        z = self.flow(z, x_mask, g=g, reverse=True)
        wav, _, f0_hat = self.decode(z, length, g)
        return wav, f0_hat

    @torch.no_grad()
    def f0_extraction(self, x_linear, x_mel, length, x_audio, noise_scale: float = 0.333,
                      noise=None) -> torch.Tensor:
        """Acoustic posterior -> source network -> predicted ln(F0+1) ``(B, 1, 4T)``."""
        g = self.style(x_mel, length)
        _, m_q, logs_q, _ = self.enc_q(x_linear, x_audio, length, g=g)
        if noise is None:
            noise = torch.randn_like(m_q)
        z = m_q + noise * torch.exp(logs_q) * noise_scale
        _, f0_hat = self.sn(z, g)
        return f0_hat
