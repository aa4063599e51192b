"""The VITS pieces of echelon-finetune on a tiny random VITS: the length scale folded into the duration
predictor is exact, posterior distillation learns the teacher's inverse, the fine-tuning trainer trains only
the parts it is told to."""

from __future__ import annotations

import pytest
import torch

from models.tts.vits.config import VITSConfig
from models.tts.vits.finetune import fold_length_scale
from models.tts.vits.model import VITS
from models.tts.vits.posterior_distill import DistillSettings, distil_posterior, posterior_fit, speak_teacher_corpus
from processors.spectrogram import VitsLinearSpectrogram

TINY = dict(n_vocab=40, spec_channels=129, segment_frames=8, inter_channels=16, hidden_channels=16,
            filter_channels=32, n_heads=2, n_layers=1, kernel_size=3, p_dropout=0.0, resblock="2",
            resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1, 2]], upsample_rates=[8, 8],
            upsample_initial_channel=16, upsample_kernel_sizes=[16, 16])


def _model(use_sdp: bool) -> VITS:
    torch.manual_seed(0)
    return VITS.from_config(VITSConfig(**TINY, use_sdp=use_sdp)).eval()


@pytest.mark.parametrize("use_sdp", [True, False])
def test_folded_length_scale_equals_the_setting(use_sdp):
    model = _model(use_sdp)
    folded = _model(use_sdp)
    folded.load_state_dict(model.state_dict())
    fold_length_scale(folded, 1.3)
    ids = torch.randint(1, 40, (1, 23))
    noise = torch.randn(1, 2, 23)
    with torch.no_grad():
        want = model.infer(ids, torch.tensor([23]), length_scale=1.3, noise_scale_w=0.8, duration_noise=noise,
                           decode=False)["w_ceil"]
        got = folded.infer(ids, torch.tensor([23]), length_scale=1.0, noise_scale_w=0.8, duration_noise=noise,
                           decode=False)["w_ceil"]
        plain = model.infer(ids, torch.tensor([23]), length_scale=1.0, noise_scale_w=0.8, duration_noise=noise,
                            decode=False)["w_ceil"]
    assert torch.equal(got, want)
    assert got.sum() > plain.sum()  # slower, as asked
    with pytest.raises(ValueError, match="positive"):
        fold_length_scale(folded, 0.0)


def test_distillation_learns_the_decoders_inverse():
    model = _model(True)
    spectrogram = VitsLinearSpectrogram(256, 64, 256)
    ids = [torch.randint(1, 40, (n,)).tolist() for n in (15, 20, 25, 18, 22, 30, 17, 26, 21, 19, 24, 16)]
    settings = DistillSettings(sentences=12, steps=100, batch_items=4, crop_frames=64, lr=3e-3)
    corpus = speak_teacher_corpus(model, ids, spectrogram, settings)
    assert len(corpus) == 12
    assert all(it.spec.shape[-1] == it.z.shape[-1] and it.spec.shape[0] == 129 for it in corpus)
    before = posterior_fit(model.enc_q, corpus[:1])
    after = distil_posterior(model.enc_q, corpus, settings)  # fit on the held-out tenth (the first item)
    # a tiny random decoder loses much of its latent, so only part of z is recoverable: the likelihood of the
    # teacher's latents on an unseen item must still rise clearly, and the mean come closer
    assert after["nll"] < before["nll"] - 0.25
    assert after["l1"] < before["l1"]


def test_flow_on_a_window_gives_the_whole_utterances_segment():
    """The fine-tuning step runs the flow on a window ``context_frames`` wider than the decoder's segment on
    each side: the segment's latents must equal those of the flow over the whole utterance."""
    from models.tts.vits.finetune_trainer import context_frames

    model = _model(use_sdp=False)
    margin = context_frames(model.flow)
    assert margin > 0
    torch.manual_seed(1)
    with torch.no_grad():  # a trained flow: VITS starts each coupling's output projection at zero (identity)
        for p in model.flow.parameters():
            p.normal_(0, 0.3)
    frames, seg, start = 6 * margin + 20, 8, 3 * margin
    z_p = torch.randn(1, TINY["inter_channels"], frames)
    full = model.flow(z_p, torch.ones(1, 1, frames), reverse=True)
    lo, hi = start - margin, start + seg + margin
    window = model.flow(z_p[:, :, lo:hi], torch.ones(1, 1, hi - lo), reverse=True)
    assert torch.allclose(window[:, :, margin:margin + seg], full[:, :, start:start + seg], atol=1e-5)
    bare = model.flow(z_p[:, :, start:start + seg], torch.ones(1, 1, seg), reverse=True)  # no context: differs
    assert not torch.allclose(bare, full[:, :, start:start + seg], atol=1e-3)


def _optimizer_of(**train) -> tuple:
    """The fine-tuning trainer's generator optimizer for a tiny VITS, built by its own build_optimizers."""
    from types import SimpleNamespace

    from models.tts.vits.finetune_trainer import VITSFinetuneTrainConfig, VITSFinetuneTrainer

    trainer = object.__new__(VITSFinetuneTrainer)
    trainer.cfg = SimpleNamespace(train=VITSFinetuneTrainConfig(**train))
    gen = _model(True)
    return gen, trainer.build_optimizers({"generator": gen})["generator"]


def test_trainer_trains_the_parts_at_their_rates_and_never_the_frozen_modules():
    gen, opt = _optimizer_of(lr_decoder=1e-4, lr_flow=2e-5)  # freeze: the default, the first upsampler
    rate = {id(p): group["lr"] for group in opt.param_groups for p in group["params"]}
    for name, p in gen.named_parameters():
        if name.startswith("dec.ups.0."):
            expected = None  # the frame-rate buzz (finetune_trainer's config)
        else:
            expected = {"dec": 1e-4, "flow": 2e-5}.get(name.split(".")[0])
        assert rate.get(id(p)) == expected and p.requires_grad == (expected is not None), name
    assert any(n.startswith("dec.ups.1.") and id(p) in rate for n, p in gen.named_parameters())
    gen, opt = _optimizer_of(freeze=[], lr_flow=0.0)
    trained = {n.split(".")[0] for n, p in gen.named_parameters() if p.requires_grad}
    assert trained == {"dec"} and len(opt.param_groups) == 1
    with pytest.raises(ValueError, match="train.freeze: the generator has no module 'dec.nowhere'"):
        _optimizer_of(freeze=["dec.nowhere"])
