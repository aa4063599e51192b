"""Helpers of egs/tts/toy_tts/piper_voice.sh: the training text list, the held-out test jobs, figures.

    python egs/tts/toy_tts/local/piper_voice.py texts OUT.txt           # the training sentences (two CC0 lists)
    python egs/tts/toy_tts/local/piper_voice.py jobs OUT_DIR            # test.jsonl + test.txt (id|text), 20 unseen
    python egs/tts/toy_tts/local/piper_voice.py curve train_log.jsonl OUT.png
    python egs/tts/toy_tts/local/piper_voice.py spectrogram WAV OUT.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TEXTS = Path(__file__).resolve().parents[4] / "processors" / "data" / "texts"
TRAIN_LISTS = ("echelon_sentences.txt", "echelon_sentences_more.txt")
TEST_LIST = "echelon_test_sentences.txt"


def sentences(name: str) -> list:
    lines = (TEXTS / name).read_text(encoding="utf-8").splitlines()
    return [" ".join(line.split()) for line in lines if line.strip() and not line.startswith("#")]


def texts(out: Path) -> None:
    train = [s for name in TRAIN_LISTS for s in sentences(name)]
    unseen = set(sentences(TEST_LIST))
    if unseen & set(train):
        raise SystemExit(f"piper_voice: test sentences also in the training lists: {sorted(unseen & set(train))[:3]}")
    out.write_text("\n".join(train) + "\n", encoding="utf-8")


def jobs(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [(f"test_{n:02d}", text) for n, text in enumerate(sentences(TEST_LIST), start=1)]
    (out_dir / "test.jsonl").write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in rows),
                                        encoding="utf-8")
    (out_dir / "test.txt").write_text("".join(f"{i}|{t}\n" for i, t in rows), encoding="utf-8")


def curve(log: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for ax, key in zip(axes, ("mel_l1", "duration_mse")):
        for split, style in (("train", "-"), ("valid", "o-")):
            points = [(r["step"], r[key]) for r in rows if r["split"] == split and key in r]
            if points:
                ax.plot(*zip(*points), style, label=split)
        ax.set_xlabel("step"), ax.set_title(key), ax.legend(), ax.grid(alpha=0.3)
    fig.suptitle(f"toy_tts on the Piper corpus ({log})", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def spectrogram(wav: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from models.example.toy_tts.config import ToyTTSDataConfig
    from processors.audio import load_audio
    from processors.spectrogram import VitsMelSpectrogram

    data = ToyTTSDataConfig()  # the toy's own mel front end (22.05 kHz, hop 256)
    mel = VitsMelSpectrogram.from_config(data)(torch.from_numpy(load_audio(wav, data.sample_rate))[None])[0]
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.imshow(mel.numpy(), origin="lower", aspect="auto", vmin=-11.5, vmax=2)
    ax.set_title(str(wav), fontsize=8), ax.set_xlabel("frame (11.6 ms)"), ax.set_ylabel("mel bin")
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def main(argv: list) -> int:
    commands = {"texts": texts, "jobs": jobs, "curve": curve, "spectrogram": spectrogram}
    if not argv or argv[0] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    commands[argv[0]](*map(Path, argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
