"""Preparer ``piper_corpus``: a transcribed, aligned single-speaker corpus spoken by a pretrained VITS voice.

Every sentence of a public-domain text list (default: ``processors/data/texts/echelon_sentences.txt``, 80
sentences written for Echelon, CC0) is synthesised by a VITS checkpoint — typically a Piper voice converted
with ``echelon-convert-piper joe DIR`` — and written to ``DATA_DIR/wavs/<id>.wav``; the manifests get the
sentence as ``text`` and, in ``extra``, the model's own alignment::

    {"phonemes": "ðə kˈɛɾəl ...",          # the front end's phoneme string
     "phoneme_ids": [1, 0, 41, 0, ...],    # the model input (Piper: ^ _ p _ p _ ... $)
     "durations": [3, 1, 4, ...],           # frames per id from the duration predictor (sum = frames spoken)
     "hop_length": 256, "frame_seconds": 0.01161, "voice": "<checkpoint dir>"}

so CPU training tests of new models get real-sounding speech with known text and phoneme timing.

It lives beside VITS because it runs a VITS model (:class:`models.tts.vits.aligned.AlignedVITS`); the registry
finds the preparer here like any other (``echelon-preprocess --preparer piper_corpus``).

Options (``echelon-preprocess --preparer piper_corpus ... ckpt_dir=DIR``): ``ckpt_dir`` (required),
``texts`` (a text file, one sentence per line, ``#`` comments), ``max_items``, ``speaker`` (multi-speaker
voices), ``device``.  A sentence the front end cannot speak is skipped and listed in ``OUT_DIR/rejected.tsv``;
wavs already written by an earlier run are kept and not synthesised again.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from processors.audio import audio_info, save_audio
from processors.data.manifest import ManifestEntry, atomic_write_text, safe_id, split_entries, write_manifest
from models.tts.vits.aligned import AlignedVITS
from utils.registry import register
from utils.wording import plural

logger = logging.getLogger(__name__)

DEFAULT_TEXTS = Path(__file__).resolve().parents[3] / "processors" / "data" / "texts" / "echelon_sentences.txt"


def read_sentences(path: Path) -> List[str]:
    if not path.is_file():
        raise FileNotFoundError(f"piper_corpus: text list not found: {path}")
    sentences = [" ".join(line.split()) for line in path.read_text(encoding="utf-8").splitlines()]
    sentences = [s for s in sentences if s and not s.startswith("#")]
    if not sentences:
        raise ValueError(f"piper_corpus: {path} holds no sentence")
    return sentences


def _alignment_path(wav: Path) -> Path:
    return wav.with_suffix(".align.json")


def synthesise(voice: AlignedVITS, sentences: List[Tuple[str, str]], wav_dir: Path, speaker: Optional[str], seed: int,
               voice_name: str) -> Tuple[List[ManifestEntry], List[Tuple[str, str]]]:
    """Speak every ``(id, text)`` (skipping finished ones); returns (entries, rejected (id, reason))."""
    entries, rejected = [], []
    for number, (item_id, text) in enumerate(sentences):
        wav_path = wav_dir / f"{item_id}.wav"
        align_path = _alignment_path(wav_path)
        if not (wav_path.is_file() and align_path.is_file()):
            try:
                utterance = voice.synthesize_aligned([text], None if speaker is None else [speaker], seed + number)[0]
            except ValueError as err:  # the front end's TextError is a ValueError
                rejected.append((item_id, str(err)))
                continue
            save_audio(wav_path, utterance.audio.waveform, utterance.audio.sample_rate)
            extra = {"phonemes": utterance.phonemes, "phoneme_ids": utterance.ids, "durations": utterance.frames,
                     "hop_length": utterance.hop_length,
                     "frame_seconds": round(utterance.hop_length / utterance.audio.sample_rate, 6), "voice": voice_name}
            atomic_write_text(align_path, json.dumps(extra, ensure_ascii=False))
        info = audio_info(wav_path)
        extra = json.loads(align_path.read_text(encoding="utf-8"))
        entries.append(ManifestEntry(item_id, str(wav_path), speaker or "piper", text,
                                     round(info.frames / info.samplerate, 4), int(info.samplerate), extra))
    return entries, rejected


@register("preparer", "piper_corpus")
def prepare_piper_corpus(data_dir, out_dir, seed: int = 1234, valid: float = 0.05, test: float = 0.05,
                         download: bool = False, ckpt_dir: Optional[str] = None, texts: Optional[str] = None,
                         max_items: Optional[int] = None, speaker: Optional[str] = None,
                         device: str = "cpu") -> Dict[str, Path]:
    """Synthesise the text list into ``data_dir/wavs`` and write train/valid/test manifests into ``out_dir``."""
    if not ckpt_dir:
        raise ValueError("piper_corpus needs ckpt_dir=DIR: a VITS checkpoint, e.g. from "
                         "`echelon-convert-piper joe DIR` (the installed Piper voice)")
    sentences = read_sentences(Path(texts) if texts else DEFAULT_TEXTS)
    if max_items is not None:
        sentences = sentences[: int(max_items)]
    items = [(safe_id("piper", f"{number:04d}"), text) for number, text in enumerate(sentences, start=1)]
    wav_dir = Path(data_dir) / "wavs"
    wav_dir.mkdir(parents=True, exist_ok=True)
    voice = AlignedVITS(ckpt_dir, device=device)
    entries, rejected = synthesise(voice, items, wav_dir, speaker, int(seed), str(ckpt_dir))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # Written on every run (empty when nothing was left out), so a rerun never shows an earlier run's list.
    atomic_write_text(out_dir / "rejected.tsv", "".join(f"{i}\t\t{r}\n" for i, r in rejected))
    if rejected:
        logger.warning("piper_corpus: %s left out; see %s", plural(len(rejected), "sentence"), out_dir / "rejected.tsv")
    if not entries:
        raise ValueError(f"piper_corpus: no sentence could be synthesised ({rejected[:1]})")
    splits = split_entries(entries, valid, test, seed)
    paths = {name: write_manifest(split, out_dir / f"{name}.jsonl") for name, split in splits.items()}
    logger.info("piper_corpus: %d utterances (%s) -> %s", len(entries),
                ", ".join(f"{k} {len(v)}" for k, v in splits.items()), out_dir)
    return paths
