"""Fine-tune a pretrained voice on someone's recordings: ``echelon-finetune --audio_dir DIR --base_ckpt_dir BASE
--exp_dir EXP``.

DIR: wav/flac/mp3/ogg files, any rate or channels, short clips or long takes; transcripts optional (an LJSpeech
``metadata.csv``, or a ``.txt``/``.lab`` beside each file; Whisper transcribes the rest). BASE: an Echelon VITS
checkpoint dir (``echelon-convert-piper joe exp/joe``) or another family's that registers a finetuner. Writes
``EXP/voice/`` (for ``echelon-infer --ckpt_dir`` / ``echelon-serve``), ``EXP/voice.onnx`` + ``.onnx.json``
(Piper's format) and ``EXP/results.md`` / ``results.json`` (data used and skipped, WER / SIM / DNSMOS /
frame-rate buzz per evaluated checkpoint, the base voice first). Logic: ``finetune/run.py``. Exit status: 0
done, 2 cannot start (one line), 130/143 stopped (``--resume`` continues).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import List, Optional

from bins.common import run_cli
from utils.cli import ArgumentParser


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="echelon-finetune", description=__doc__.split("\n")[0])
    p.add_argument("--audio_dir", required=True, help="folder of the reader's recordings (searched recursively)")
    p.add_argument("--base_ckpt_dir", required=True, help="the pretrained voice's checkpoint dir")
    p.add_argument("--exp_dir", required=True, help="where the run, the voice and the results go")
    p.add_argument("--cpu_minutes", type=float, default=30.0,
                   help="training budget in CPU minutes (process CPU time, all threads; default 30)")
    p.add_argument("--max_steps", type=int, help="stop after this many steps (whichever budget ends first)")
    p.add_argument("--threads", type=int, help="CPU threads (default: torch's, all cores)")
    p.add_argument("--eval_every", type=int, default=100, help="score the voice every N steps (default 100)")
    p.add_argument("--eval_sentences", type=int, default=20, help="held-out sentences scored (default 20)")
    p.add_argument("--asr_model", default="base", help="faster-whisper model for transcripts and WER (base)")
    p.add_argument("--cache_dir", type=Path, help="cache of per-base-voice preparation "
                                                   "(default $ECHELON_CACHE/finetune or ~/.cache/echelon/finetune)")
    p.add_argument("--sim_reference_dir", type=Path, help="recordings of the reader whose mean embedding SIM is "
                                                            "measured against (default: the usable ones of --audio_dir)")
    p.add_argument("--max_wer", type=float, help="highest Whisper WER in %% the chosen checkpoint may have: lower keeps "
                                              "more of the base voice's clarity, higher buys more likeness "
                                              "(default 10, or the base voice's + 3)")
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="override a fine-tuning setting, e.g. --set train.lr_decoder=5e-5 (repeatable; the keys are "
                        "the family's fine-tuning config: models/tts/vits/finetune_trainer.py for VITS voices)")
    p.add_argument("--pitch_match", choices=["auto", "off"], default="auto",
                   help="auto (default): a reader 8 or more semitones from the base voice is fitted on the recordings "
                        "played slower, halfway to the base voice's pitch, and the voice plays that much faster; off: never")
    p.add_argument("--blend", default="auto", metavar="auto|off|W",
                   help="auto (default): when the kept voice's DNSMOS is more than 0.3 under the recordings', its decoder "
                        "is moved back towards the base voice's (weights 0.8, 0.65, 0.5 tried), as far as that clears "
                        "it for at most a quarter of the likeness gained; W in (0, 1]: that weight; off: never")
    p.add_argument("--resume", action="store_true", help="continue the run in --exp_dir")
    p.add_argument("--overwrite", action="store_true", help="start again (the old run moves to EXP/previous_runs/)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main_unchecked(argv: List[str]) -> int:
    from finetune.run import FinetuneOptions, run_finetune

    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    opts = FinetuneOptions(Path(args.audio_dir), Path(args.base_ckpt_dir), Path(args.exp_dir), args.cpu_minutes, args.max_steps,
                           args.threads, args.resume, args.overwrite, args.eval_every, args.eval_sentences,
                           args.asr_model, args.cache_dir, args.sim_reference_dir, args.seed, not args.quiet,
                           None if args.max_wer is None else args.max_wer / 100, args.settings,
                           args.pitch_match == "auto", args.blend)
    return run_finetune(opts)


def main(argv: Optional[List[str]] = None) -> int:
    return run_cli("echelon-finetune", main_unchecked, argv)


if __name__ == "__main__":
    sys.exit(main())
