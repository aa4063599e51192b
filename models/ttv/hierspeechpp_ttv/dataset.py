"""TTV training data: phoneme ids, SSL features, log-F0 and the prompt log-mel of each utterance.

Features are precomputed by the feature-extraction CLI (``bins/extract_features.py``) as
``<features_dir>/{ssl,f0}/<id>.pt``: ``ssl`` (C, T) SSL layer features, ``f0`` (4T,) ln(F0 + 1) with 0 for
unvoiced frames (the official TTV preprocessing uses YAAPT with f0_max 400). The log-mel (80, T) is read
from ``<features_dir>/mel/<id>.pt`` when present, else computed from the audio. Text comes from the
manifest's ``text`` field through :class:`processors.text.frontend.TextFrontend` (phonemised once, cached).

Official filters (``prepare_filelist.py``): 32 <= frames <= 600, 1 <= tokens <= 200, 2*tokens+1 <= frames,
F0 not all zero; items failing them are skipped with a logged reason.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from torch.utils.data import Dataset

from processors.audio import load_audio
from processors.data.manifest import read_manifest
from processors.features.store import load_feature
from processors.spectrogram import HierSpeechLogMel
from processors.text.frontend import TextError, TextFrontend

logger = logging.getLogger(__name__)

HOP = 320
MIN_BATCH_FRAMES = 60  # the pitch predictor trains on a 60-frame window: pad batches at least this long


class TTVDataset(Dataset):
    """Item = dict(ids_blank (2n+1,), ids (n,), ssl (C, T), log_f0 (4T,), mel (80, T))."""

    def __init__(self, manifest: str, features_dir: str, min_frames: int = 32, max_frames: int = 600,
                 max_tokens: int = 200, on_unknown: str = "warn"):
        self.features_dir = Path(features_dir)
        self.frontend = TextFrontend(add_blank=True, on_unknown=on_unknown)
        self.mel_fn = HierSpeechLogMel()
        self.items: List[Dict] = []
        for entry in read_manifest(manifest):
            reason = self._load(entry, min_frames, max_frames, max_tokens)
            if reason is not None:
                logger.warning("TTV dataset: skipping %s: %s", entry.id, reason)
        if not self.items:
            raise ValueError(f"TTV dataset {manifest}: no usable items (see the warnings above)")

    def _feature(self, kind: str, item_id: str) -> Optional[torch.Tensor]:
        value = load_feature(self.features_dir, kind, item_id, required=False)
        return None if value is None else value.float()

    def _load(self, entry, min_frames: int, max_frames: int, max_tokens: int) -> Optional[str]:
        if not entry.text.strip():
            return "no transcript"
        try:
            text = self.frontend(entry.text)
        except TextError as err:
            return f"text: {err}"
        ssl, log_f0 = self._feature("ssl", entry.id), self._feature("f0", entry.id)
        if ssl is None or log_f0 is None:
            return f"missing ssl/f0 features under {self.features_dir}"
        frames = min(ssl.size(1), log_f0.numel() // 4)
        n_tokens = len(text["ids"])
        if not (min_frames <= frames <= max_frames):
            return f"{frames} frames outside [{min_frames}, {max_frames}]"
        if not (1 <= n_tokens <= max_tokens) or 2 * n_tokens + 1 > frames:
            return f"{n_tokens} tokens do not fit {frames} frames (need 2*tokens+1 <= frames, tokens <= {max_tokens})"
        if not bool((log_f0 > 0).any()):
            return "F0 is all zero"
        mel = self._feature("mel", entry.id)
        if mel is None:
            wav = load_audio(entry.path, 16000)[: frames * HOP]
            wav = np.pad(wav, (0, frames * HOP - len(wav)))
            mel = self.mel_fn(torch.from_numpy(wav).unsqueeze(0))[0]
        if mel.size(1) < frames:
            return f"mel has {mel.size(1)} frames, SSL {frames}"
        self.items.append({"id": entry.id, "ids_blank": torch.tensor(text["ids_blank"], dtype=torch.long),
                           "ids": torch.tensor(text["ids"], dtype=torch.long), "ssl": ssl[:, :frames],
                           "log_f0": log_f0[: 4 * frames], "mel": mel[:, :frames]})
        return None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Dict:
        return self.items[index]


def _pad_stack(tensors: List[torch.Tensor], length: int) -> torch.Tensor:
    out = tensors[0].new_zeros((len(tensors),) + tuple(tensors[0].shape[:-1]) + (length,))
    for i, t in enumerate(tensors):
        out[i, ..., : t.shape[-1]] = t
    return out


def collate_ttv(items: List[Dict]) -> Dict[str, torch.Tensor]:
    """Zero-padded batch; the frame axis is at least 60 long (see :data:`MIN_BATCH_FRAMES`)."""
    lengths = torch.tensor([it["ssl"].size(1) for it in items], dtype=torch.long)
    frames = max(int(lengths.max()), MIN_BATCH_FRAMES)
    text_len = torch.tensor([len(it["ids_blank"]) for it in items], dtype=torch.long)
    ctc_len = torch.tensor([len(it["ids"]) for it in items], dtype=torch.long)
    return {
        "w2v": _pad_stack([it["ssl"] for it in items], frames),
        "length": lengths,
        "text": _pad_stack([it["ids_blank"] for it in items], int(text_len.max())),
        "text_length": text_len,
        "text_for_ctc": _pad_stack([it["ids"] for it in items], int(ctc_len.max())),
        "text_ctc_length": ctc_len,
        "mel": _pad_stack([it["mel"] for it in items], frames),
        "log_f0": _pad_stack([it["log_f0"] for it in items], 4 * frames).unsqueeze(1),
    }
