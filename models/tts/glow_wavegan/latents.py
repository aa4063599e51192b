"""Stage-1 latents for stage-2 training: the frozen encoder's posterior ``(mean, log_std)`` per utterance.

Layout of a latent directory (written by :func:`extract_latents`, registered as the feature
``glow_wavegan_latent``)::

    <dir>/meta.json      latent_channels, hop_length, sample_rate, stage1_ckpt, stage1_fingerprint
    <dir>/<id>.pt        {"mean": (D, T) float32, "log_std": (D, T) float32},  T = samples // hop
    <dir>/bad_items.tsv  items that could not be read (id, reason), when any

Storing the posterior (not a sample) lets stage 2 draw a fresh ``z ~ q(z|x)`` every step without running the
waveform encoder.  :class:`LatentStore` refuses latents whose ``D`` or stage-1 checkpoint differ from what the
stage-2 config names (one-line error naming ``meta.json``): the acoustic model must learn exactly the
distribution the decoder was trained on.  Resumable: existing files are kept; every file is written atomically.

CLI::

    python -m models.tts.glow_wavegan.latents --stage1_ckpt exp/s1 --manifest data/train.jsonl --out_dir exp/latents
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch

from models.base import checkpoint as ckpt
from processors.audio import AudioError, load_audio
from processors.data.manifest import ManifestError, read_manifest
from utils.io import atomic_torch_save, atomic_write_text
from utils.registry import register

log = logging.getLogger(__name__)
META_FILE = "meta.json"


class LatentError(ValueError):
    """A latent directory or file does not match what the stage-2 config expects."""


@dataclass
class LatentStore:
    root: Path
    meta: Dict[str, object]

    @classmethod
    def open(cls, root: Path, expected_channels: Optional[int] = None, stage1_ckpt: Optional[str] = None) -> "LatentStore":
        """Read ``meta.json`` and check ``D`` and (when given) the stage-1 checkpoint's fingerprint."""
        from models.tts.glow_wavegan.vae import stage1_fingerprint

        meta_path = Path(root) / META_FILE
        if not meta_path.is_file():
            raise LatentError(f"{meta_path}: not found (extract latents with models.tts.glow_wavegan.latents)")
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if expected_channels is not None and int(meta["latent_channels"]) != expected_channels:
            raise LatentError(f"{meta_path}: latents have {meta['latent_channels']} channels but model.out_channels "
                              f"is {expected_channels}")
        if stage1_ckpt:
            found = stage1_fingerprint(ckpt.resolve_checkpoint_dir(stage1_ckpt))
            if meta["stage1_fingerprint"] != found:
                raise LatentError(f"{meta_path}: latents come from stage-1 checkpoint {meta['stage1_fingerprint']} "
                                  f"({meta['stage1_ckpt']}), but data.stage1_ckpt is {found} ({stage1_ckpt})")
        return cls(Path(root), meta)

    def path(self, item_id: str) -> Path:
        return self.root / f"{item_id}.pt"

    def has(self, item_id: str) -> bool:
        return self.path(item_id).is_file()

    def load(self, item_id: str) -> Tuple[torch.Tensor, torch.Tensor]:
        path = self.path(item_id)
        obj = torch.load(path, map_location="cpu", weights_only=True)
        mean, log_std = obj["mean"].float(), obj["log_std"].float()
        if mean.dim() != 2 or mean.shape != log_std.shape or mean.size(0) != int(self.meta["latent_channels"]):
            raise LatentError(f"{path}: mean {tuple(mean.shape)} / log_std {tuple(log_std.shape)} do not match "
                              f"D={self.meta['latent_channels']}")
        return mean, log_std


@register("feature", "glow_wavegan_latent")
@torch.no_grad()
def extract_latents(stage1_ckpt: str | Path, manifests: Sequence[str | Path], out_dir: str | Path,
                    device: str = "cpu", overwrite: bool = False) -> Tuple[List[Path], List[Tuple[str, str]]]:
    """Encode every manifest item with the stage-1 encoder; returns (written files, bad items (id, reason))."""
    from models.tts.glow_wavegan.vae import load_vae_checkpoint, stage1_fingerprint

    model, cfg, ckpt_dir = load_vae_checkpoint(stage1_ckpt, device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {"latent_channels": model.latent_channels, "hop_length": model.hop_length,
            "sample_rate": cfg.data.sampling_rate, "stage1_ckpt": str(ckpt_dir),
            "stage1_fingerprint": stage1_fingerprint(ckpt_dir)}
    meta_path = out_dir / META_FILE
    if meta_path.is_file() and not overwrite:
        old = json.loads(meta_path.read_text(encoding="utf-8"))
        if old.get("stage1_fingerprint") != meta["stage1_fingerprint"]:
            raise LatentError(f"{meta_path}: holds latents of another stage-1 checkpoint; use a new out_dir or overwrite")
    atomic_write_text(meta_path, json.dumps(meta, indent=2))
    written, bad = [], []
    for manifest in manifests:
        for entry in read_manifest(manifest):
            target = out_dir / f"{entry.id}.pt"
            if target.is_file() and not overwrite:
                continue
            try:
                wav = torch.from_numpy(load_audio(entry.path, cfg.data.sampling_rate)).float().to(device)
                mean, log_std = model.encode(wav.view(1, 1, -1))
            except (AudioError, ValueError, OSError) as err:
                bad.append((entry.id, str(err)))
                continue
            written.append(atomic_torch_save(target, {"mean": mean[0].cpu().contiguous(),
                                                      "log_std": log_std[0].cpu().contiguous()}))
    if bad:
        atomic_write_text(out_dir / "bad_items.tsv", "".join(f"{i}\t{r}\n" for i, r in bad))
        log.warning("%d item(s) could not be encoded, listed in %s", len(bad), out_dir / "bad_items.tsv")
    return written, bad


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Extract Glow-WaveGAN stage-1 latents (mean, log_std) per item")
    parser.add_argument("--stage1_ckpt", required=True, help="stage-1 experiment or checkpoint dir")
    parser.add_argument("--manifest", action="append", required=True, help="JSONL manifest (repeatable)")
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        written, bad = extract_latents(args.stage1_ckpt, args.manifest, args.out_dir, args.device, args.overwrite)
    except (ckpt.CheckpointError, ManifestError, LatentError, FileNotFoundError) as err:
        print(f"glow_wavegan latents: {err}", file=sys.stderr)
        return 2
    print(f"wrote {len(written)} latent file(s) to {args.out_dir}; {len(bad)} bad item(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
