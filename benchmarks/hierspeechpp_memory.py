"""Peak resident memory of HierSpeech++ voice conversion followed by SpeechSR-48k, Echelon vs the official way.

Each mode runs in a fresh process and reports its peak RSS (``VmHWM``, ``utils.memory.peak_rss_mb``) after
loading the models from disk, converting a 5 s source with a 3 s prompt and upsampling the result to 48 kHz:

* ``echelon``: ``SSLFeatureExtractor.from_pretrained(dir, layer=7)`` (only 7 of the 24 MMS layers are built
  and read from the safetensors file), ``VoiceConverter.from_official(.pth)`` (its default inference path),
  ``SpeechSR.from_pretrained(48000).optimize_for_inference()``;
* ``official``: what the official ``inference_vc.py`` holds: the whole 24-layer MMS-300m
  (``Wav2Vec2Model.from_pretrained``; the official wrapper's pre-training heads are left out, so this
  understates it), the synthesizer's ``torch.load`` state dict loaded into a model that keeps weight norm,
  all 24 layers run with ``output_hidden_states``, the reference anti-aliasing and SpeechSR arithmetic.

Weights are random (MMS-300m is not available offline): a randomly initialised MMS-300m-shaped
``Wav2Vec2Model`` and a full-size synthesizer are written once to ``--workdir`` in the released formats
(safetensors directory, official ``.pth`` + ``config.json``); SpeechSR-48k uses the bundled release.
The official code's own figure on this machine type (blueprint §8.2) was 3.0 GB.

Usage: python benchmarks/hierspeechpp_memory.py [--workdir DIR] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _peak_mb() -> float:
    from utils.memory import peak_rss_mb

    return peak_rss_mb()  # not ru_maxrss: a subprocess inherits its parent's peak there


def prepare(workdir: Path) -> None:
    """Random MMS-300m-shaped encoder (safetensors dir) and full-size synthesizer (.pth + config.json)."""
    import torch
    from transformers import Wav2Vec2Model

    from hierspeechpp_vc_speed import mms_300m_config
    from models.tts.hierspeechpp.checkpoint import save_official_checkpoint
    from models.tts.hierspeechpp.config import HierSpeechPPConfig
    from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer
    from utils.config import to_dict

    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "mms" / "config.json").is_file():
        torch.manual_seed(0)
        Wav2Vec2Model(mms_300m_config()).save_pretrained(workdir / "mms")
    if not (workdir / "synth.pth").is_file():
        torch.manual_seed(1)
        model = HierSpeechPPSynthesizer.from_config(HierSpeechPPConfig())
        save_official_checkpoint(model, workdir / "synth.pth")
        (workdir / "config.json").write_text(json.dumps({"model": to_dict(model.config)}))


def run(mode: str, workdir: Path, threads: int) -> dict:
    import torch

    from hierspeechpp_vc_speed import DEFAULT_PROMPT, DEFAULT_SOURCE, speech
    from models.sr.speechsr.model import SpeechSR
    from processors.audio import load_audio

    torch.set_num_threads(threads)
    source, prompt = speech(DEFAULT_SOURCE, 5.0), load_audio(DEFAULT_PROMPT, 16000)
    if mode == "echelon":
        from models.tts.hierspeechpp.inference import VoiceConverter
        from processors.ssl import SSLFeatureExtractor

        ssl = SSLFeatureExtractor.from_pretrained(str(workdir / "mms"), layer=7)
        converter = VoiceConverter.from_official(workdir / "synth.pth", ssl=ssl)
        sr = SpeechSR.from_pretrained(48000).optimize_for_inference()
        loaded = _peak_mb()
        wav = converter.convert([source], [prompt])[0]
    else:
        from transformers import Wav2Vec2Model

        from hierspeechpp_vc_speed import Pipeline, official_ssl
        from models.tts.hierspeechpp.config import load_official_config
        from models.tts.hierspeechpp.model import HierSpeechPPSynthesizer

        full = Wav2Vec2Model.from_pretrained(str(workdir / "mms")).eval()
        model = HierSpeechPPSynthesizer.from_config(load_official_config(workdir / "config.json")).eval()
        model.load_state_dict(torch.load(workdir / "synth.pth", map_location="cpu", weights_only=True))
        sr = SpeechSR.from_pretrained(48000)
        loaded = _peak_mb()
        wav = Pipeline(model, official_ssl(full), source, prompt, torch.device("cpu"), fast_f0=False).run()[0]
        wav = wav.reshape(-1).numpy()
    with torch.inference_mode():
        out = sr(torch.from_numpy(wav).view(1, 1, -1))
    return {"mode": mode, "loaded_mb": round(loaded), "peak_mb": round(_peak_mb()), "samples_48k": out.shape[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "hsp_memory")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", choices=["echelon", "official"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    if args.child:
        print(json.dumps(run(args.child, args.workdir, args.threads)))
        return
    prepare(args.workdir)
    results = {}
    for mode in ("official", "echelon"):
        command = [sys.executable, __file__, "--child", mode, "--workdir", str(args.workdir),
                   "--threads", str(args.threads)]
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{mode:>9}: peak RSS after loading {results[mode]['loaded_mb']} MB, "
              f"after VC + SR48 {results[mode]['peak_mb']} MB", flush=True)
    print(f"echelon / official peak RSS: {results['echelon']['peak_mb'] / results['official']['peak_mb']:.2f}")


if __name__ == "__main__":
    main()
