"""modules/losses.py: LSGAN, feature matching, KL (against the official TTV loss), mel L1."""

import torch

from modules.losses import discriminator_loss, feature_matching_loss, generator_loss, kl_loss, mel_l1_loss
from tests.helpers import load_fixture


def test_kl_loss_matches_official_ttv_training_loss():
    fx = load_fixture("hierspeechpp/ttv_tiny.pt")
    out = fx["outputs"]
    kl = kl_loss(out["tr_z_p"], out["tr_logs_q"], out["tr_m_p_expanded"], out["tr_logs_p_expanded"], out["tr_y_mask"])
    expected = torch.as_tensor(out["tr_losses"]["kl_x0.1"]).float()
    torch.testing.assert_close(0.1 * kl, expected, rtol=1e-4, atol=0)


def test_kl_loss_is_zero_for_identical_gaussians_in_expectation():
    torch.manual_seed(0)
    m = torch.randn(1, 4, 20000)
    logs = torch.full_like(m, -0.3)
    z = m + torch.randn_like(m) * torch.exp(logs)
    mask = torch.ones(1, 1, 20000)
    assert abs(kl_loss(z, logs, m, logs, mask).item()) < 0.02
    # A mismatched prior costs more.
    assert kl_loss(z, logs, m + 1.0, logs, mask).item() > 0.5


def test_lsgan_and_feature_matching():
    real = [torch.ones(2, 5), torch.full((2, 3), 0.5)]
    fake = [torch.zeros(2, 5), torch.full((2, 3), 0.5)]
    total, r, f = discriminator_loss(real, fake)
    assert r == [0.0, 0.25] and f == [0.0, 0.25]
    assert abs(total.item() - 0.5) < 1e-7
    g_total, g_parts = generator_loss(fake)
    assert abs(g_total.item() - 1.25) < 1e-7 and len(g_parts) == 2
    fm_r = [[torch.zeros(2, 3), torch.ones(4)]]
    fm_g = [[torch.ones(2, 3, requires_grad=True), torch.ones(4)]]
    loss = feature_matching_loss(fm_r, fm_g)
    assert abs(loss.item() - 2.0) < 1e-7
    loss.backward()
    assert fm_g[0][0].grad is not None


def test_mel_l1_masked():
    a = torch.zeros(1, 2, 4)
    b = torch.ones(1, 2, 4)
    b[..., 3] = 100.0
    mask = torch.tensor([[[1.0, 1.0, 1.0, 0.0]]])
    assert mel_l1_loss(a, b, mask).item() == 1.0
    assert mel_l1_loss(a, b).item() > 1.0
