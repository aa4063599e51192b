"""The official HierSpeech++ checkpoints ``echelon-models`` lists (synthesizers, TTV) and the SSL model they read.

None installs from a package registry: they are downloaded from the official release, into the layout of the
official scripts (``logs/<folder>/<file>.pth`` with the folder's ``config.json`` beside it), and found there
relative to the current directory. HierSpeech++ also needs ``facebook/mms-300m`` in the Hugging Face cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

from models.base.pretrained import Pretrained, in_hub_cache
from processors.ssl import DEFAULT_SSL_LAYER, DEFAULT_SSL_MODEL
from utils.registry import register

RELEASE = ("the official release: github.com/sh-lee-prml/HierSpeechpp, README (Google Drive "
           "drive.google.com/drive/folders/1-L_90BlCkbPyKWWHTUjt5Fsu3kz0du0w; mirror huggingface.co/spaces/HierSpeech/"
           "HierSpeech_TTS)")
SYNTHESIZERS = {  # official layout -> what it is
    "logs/hierspeechpp_eng_kor/hierspeechpp_v1.1_ckpt.pth": "v1.1, 2,796 h English + Korean (recommended)",
    "logs/hierspeechpp_libritts960/hierspeechpp_lt960_ckpt.pth": "LibriTTS-960",
    "logs/hierspeechpp_libritts460/hierspeechpp_lt460_ckpt.pth": "LibriTTS-460",
}
TTV = "logs/ttv_libritts_v1/ttv_lt960_ckpt.pth"


def _official(relative: str, name: str, purpose: str, usage: str) -> Pretrained:
    path = Path(relative)
    where = str(path.resolve()) if path.is_file() else f"{RELEASE} -> ./{relative}, its config.json beside it"
    return Pretrained(name, purpose, path.is_file(), where, usage)


@register("pretrained", "hierspeechpp")
def official_checkpoints() -> List[Pretrained]:
    first = next(iter(SYNTHESIZERS))
    entries = [_official(rel, f"HierSpeech++ synthesizer {what}", "voice conversion (16 kHz)",
                         f"echelon-infer --ckpt_dir {rel} --model_type hierspeechpp --source src.wav "
                         "--prompt voice.wav --output_dir out") for rel, what in SYNTHESIZERS.items()]
    entries.append(_official(TTV, "HierSpeech++ TTV v1 (LibriTTS-960, English)", "zero-shot TTS (with a synthesizer)",
                             f"echelon-infer --ckpt_dir {TTV} --model_type hierspeechpp_tts --component "
                             f'synthesizer={first} --prompt voice.wav --text "Hello." --output_dir out'))
    cached = in_hub_cache(DEFAULT_SSL_MODEL)
    where = "the Hugging Face cache" if cached else \
        f"huggingface-cli download {DEFAULT_SSL_MODEL} where the hub is reachable (then copy the cache to this machine)"
    entries.append(Pretrained(f"{DEFAULT_SSL_MODEL} (layer {DEFAULT_SSL_LAYER})",
                              "SSL features of HierSpeech++ (VC, TTS, training)", cached, where,
                              "read by the HierSpeech++ pipelines and python -m bins.extract_features --features ssl"))
    return entries
