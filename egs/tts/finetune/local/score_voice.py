#!/usr/bin/env python3
"""Score Piper-format voices (``.onnx`` + ``.onnx.json``) on sentences echelon-finetune never chose a checkpoint
on, through another runtime than the one that trained them: the check a user makes of ``EXP/voice.onnx``.

    python egs/tts/finetune/local/score_voice.py --reference_dir READER_DIR \\
        --voice base=PATH/joe.onnx --voice tuned=EXP/voice.onnx [--runtime piper|onnxruntime]

Each voice reads ``independent_sentences.txt`` (25 sentences) with its ``.onnx.json`` defaults (noise 0.667,
noise_w 0.8, its length scale) and is scored as ``echelon-finetune`` scores (:mod:`finetune.scoring`): Whisper
WER, SIM against the mean embedding of the reader's recordings in ``--reference_dir``, DNSMOS, speaking rate,
and the decoder's frame-rate buzz (:func:`evaluation.spectral.frame_rate_lines_db`, mean over the sentences).
``--runtime piper`` (default when the ``piper-tts`` package is installed, a test-only dependency) synthesises
with Piper's own runtime and phonemiser; ``onnxruntime`` runs the graph with Echelon's Piper front end.
Prints one line per voice and, with ``--json``, writes the rows with every transcript.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Callable, List, Tuple

import numpy as np

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))

from finetune.run import reference_recordings  # noqa: E402
from finetune.scoring import VoiceScorer  # noqa: E402
from utils.cli import ArgumentParser  # noqa: E402

SENTENCES = Path(__file__).with_name("independent_sentences.txt")
Speak = Callable[[str], Tuple[np.ndarray, int]]


def piper_speaker(onnx: Path) -> Speak:
    from piper import PiperVoice

    voice = PiperVoice.load(onnx)

    def speak(text: str) -> Tuple[np.ndarray, int]:
        chunks = list(voice.synthesize(text))
        return np.concatenate([c.audio_float_array for c in chunks]), chunks[0].sample_rate

    return speak


def onnxruntime_speaker(onnx: Path) -> Speak:
    import onnxruntime

    from processors.text.piper_phonemes import PiperPhonemeFrontend

    config = json.loads(Path(str(onnx) + ".json").read_text(encoding="utf-8"))
    frontend = PiperPhonemeFrontend(config["phoneme_id_map"], config.get("espeak", {}).get("voice", "en-us"))
    session = onnxruntime.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
    scales = config.get("inference", {})
    rate = int(config["audio"]["sample_rate"])

    def speak(text: str) -> Tuple[np.ndarray, int]:
        pieces = []
        for ids in frontend.sentence_ids(text):
            out = session.run(None, {"input": np.array([ids], dtype=np.int64),
                                     "input_lengths": np.array([len(ids)], dtype=np.int64),
                                     "scales": np.array([scales.get("noise_scale", 0.667),
                                                         scales.get("length_scale", 1.0),
                                                         scales.get("noise_w", 0.8)], dtype=np.float32)})[0]
            pieces.append(out.reshape(-1))
        return np.concatenate(pieces), rate

    return speak


def read_sentences(path: Path) -> List[str]:
    lines = [" ".join(line.split()) for line in path.read_text(encoding="utf-8").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference_dir", type=Path, required=True, help="the reader's recordings (SIM target)")
    p.add_argument("--voice", action="append", required=True, metavar="NAME=ONNX", help="a voice to score")
    p.add_argument("--runtime", choices=["piper", "onnxruntime"], default=None)
    p.add_argument("--sentences", type=Path, default=SENTENCES)
    p.add_argument("--asr_model", default="base")
    p.add_argument("--json", type=Path, default=None, help="write every row and transcript here")
    p.add_argument("--hop", type=int, default=256, help="the voices' samples per latent frame (Piper's: 256)")
    args = p.parse_args(argv)
    runtime = args.runtime
    if runtime is None:
        try:
            import piper  # noqa: F401

            runtime = "piper"
        except ImportError:
            runtime = "onnxruntime"
    voices = []
    for spec in args.voice:
        name, sep, path = spec.partition("=")
        if not sep or not Path(path).is_file() or not Path(path + ".json").is_file():
            p.error(f"--voice {spec}: expected NAME=PATH.onnx with PATH.onnx.json beside it")
        voices.append((name, Path(path)))
    sentences = read_sentences(args.sentences)
    scorer = VoiceScorer(reference_recordings(args.reference_dir), sentences, args.asr_model)
    rows = {}
    for name, onnx in voices:
        speak = piper_speaker(onnx) if runtime == "piper" else onnxruntime_speaker(onnx)
        wavs = [speak(text) for text in sentences]
        scores = scorer.score(wavs, sentences, frame_rate_hz=wavs[0][1] / args.hop)
        rows[name] = {**scores.summary(), "utterances": scores.utterances}
        print(f"{name} ({runtime}, {len(sentences)} sentences): WER {100 * scores.wer:.1f} %, SIM {scores.sim:.3f}, "
              f"DNSMOS {scores.dnsmos:.2f}, rate {scores.rate:.1f} phonemes/s, frame-rate buzz {scores.buzz_db:.1f} dB",
              flush=True)
    if args.json:
        args.json.write_text(json.dumps({"runtime": runtime, "rows": rows}, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
