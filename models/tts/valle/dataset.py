"""VALL-E training items: phoneme ids (with <bos>/<eos>) and codec codes ``(frames, Q)`` of one utterance."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List

import torch
from torch.utils.data import Dataset

from models.tts.valle.prepare import PHONEMES, read_phonemes
from models.tts.valle.text import PAD_ID, SymbolTable
from processors.codec import load_codes
from processors.features.store import feature_path
from processors.data.manifest import read_manifest
from utils.wording import plural

log = logging.getLogger("echelon.valle.data")
CODES = "encodec_codes"  # the registered feature (processors/codec.py) whose files hold the codes
# Frames per second of those codes: the feature only accepts 24 kHz EnCodec models, whose hop is 320 samples
# (the trainer checks the codec it loads against this).
CODE_FRAME_RATE = 75.0


class ValleCodesDataset(Dataset):
    """Items of ``manifest`` that have phonemes and codes with ``min_frames <= frames <= max_frames``.

    Items without features or outside the length range are left out and listed in the log (never silently).
    """

    def __init__(self, manifest: str, features_dir: str, symbols: List[str], num_quantizers: int,
                 min_frames: int, max_frames: int):  # fmt: skip
        features = Path(features_dir)
        phonemes = read_phonemes(features / PHONEMES)
        table = SymbolTable(symbols)
        self.items: List[Dict] = []
        left_out: Dict[str, str] = {}
        for entry in read_manifest(manifest):
            if entry.id not in phonemes or not feature_path(features, CODES, entry.id).is_file():
                left_out[entry.id] = "no phonemes or codes"
                continue
            codes = load_codes(features, entry.id)
            if codes.shape[1] < num_quantizers:
                raise ValueError(f"{feature_path(features, CODES, entry.id)}: {codes.shape[1]} codebooks, the model needs {num_quantizers}")
            if not min_frames <= codes.shape[0] <= max_frames:
                left_out[entry.id] = f"{codes.shape[0]} frames outside [{min_frames}, {max_frames}]"
                continue
            text = torch.tensor(table.encode(phonemes[entry.id], source=entry.id), dtype=torch.long)
            self.items.append({"id": entry.id, "text": text, "codes": codes[:, :num_quantizers]})
        if left_out:
            log.warning("%s: %s left out: %s", manifest, plural(len(left_out), "item"),
                        "; ".join(f"{k} ({v})" for k, v in list(left_out.items())[:10]))  # fmt: skip
        if not self.items:
            raise ValueError(f"{manifest}: no usable items (features in {features_dir}?)")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> Dict:
        return self.items[index]

    def frames(self) -> List[int]:
        return [int(item["codes"].shape[0]) for item in self.items]

    def durations(self) -> List[float]:
        """Seconds per item (code frames / :data:`CODE_FRAME_RATE`), for ``train.batching`` type duration."""
        return [frames / CODE_FRAME_RATE for frames in self.frames()]


def collate_codes(items: List[Dict]) -> Dict[str, torch.Tensor]:
    """Right-pad: ``text (B, S)`` with <pad>, ``codes (B, T, Q)`` with 0; lengths ``(B,)``."""
    text_lens = torch.tensor([len(i["text"]) for i in items])
    code_lens = torch.tensor([i["codes"].shape[0] for i in items])
    text = torch.full((len(items), int(text_lens.max())), PAD_ID, dtype=torch.long)
    codes = torch.zeros(len(items), int(code_lens.max()), items[0]["codes"].shape[1], dtype=torch.long)
    for b, item in enumerate(items):
        text[b, : len(item["text"])] = item["text"]
        codes[b, : item["codes"].shape[0]] = item["codes"]
    return {"text": text, "text_lens": text_lens, "codes": codes, "code_lens": code_lens}
