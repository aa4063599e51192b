"""How the recipe picks its SSL model (egs/tts/hierspeechpp/local/resolve_ssl.py): real when reachable, else an
announced random one that every stage then loads from the same directory."""

from __future__ import annotations

import json

import torch

from tests.helpers import REPO_ROOT, load_script

SCRIPT = REPO_ROOT / "egs" / "tts" / "hierspeechpp" / "local" / "resolve_ssl.py"


def test_offline_auto_falls_back_to_a_saved_random_model(tmp_path, monkeypatch, capsys):
    from processors.ssl import SSLFeatureExtractor, build_random_ssl

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolve = load_script(SCRIPT)
    assert resolve.main(["--exp_dir", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "ssl" / "ssl.json").read_text())
    assert record["random"] is True and record["layer"] == 7 and "HF_HUB_OFFLINE" in record["why"]
    # The saved directory loads like any local model and gives the seeded random model's layer-7 features.
    loaded = SSLFeatureExtractor.from_pretrained(record["model"], record["layer"])
    reference = build_random_ssl(layer=7, num_layers=resolve.RANDOM_LAYERS, seed=resolve.RANDOM_SEED)
    wav = torch.randn(1, 8000, generator=torch.Generator().manual_seed(0))
    got, _ = loaded(wav)
    want, _ = reference(wav)
    assert got.shape[1] == record["dim"] and torch.allclose(got, want, atol=1e-5)

    # A local model directory is used as given (not random); a missing one fails with a clear message.
    other = tmp_path / "other"
    assert resolve.main(["--exp_dir", str(other), "--ssl_model", record["model"]]) == 0
    given = json.loads((other / "ssl" / "ssl.json").read_text())
    assert given["random"] is False and given["model"] == record["model"] and given["dim"] == record["dim"]
    capsys.readouterr()
    missing = tmp_path / "no_such_model"
    assert resolve.main(["--exp_dir", str(tmp_path / "third"), "--ssl_model", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err
