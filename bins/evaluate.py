"""Evaluate generated speech against a reference manifest: ``echelon-evaluate --system NAME=DIR ...``.

Writes into ``--out_dir``: ``per_utterance.csv`` (every metric of every utterance of every system),
``summary.json`` (mean, 95 % CI, n per metric; pooled corpus values with bootstrap intervals; the options),
``summary.md`` (one table row per system) and ``plots/<system>/{best,worst}_<id>.png`` (F0 overlay and mel
spectrograms).  Example::

    python -m bins.evaluate --manifest test.jsonl --prompts prompts.json \\
        --system hierspeechpp=exp/hsp/wavs --system vits=exp/vits/wavs --out_dir exp/eval

Generated files are paired with the manifest by id (file name without extension); a missing or extra id is
an error that names it.  An utterance whose audio cannot be read is skipped and listed in
``<out_dir>/bad_items_<run>.tsv`` (the first five also on the console as ``id: reason``); the run ends with
``N scored, M failed[: see <list>]`` and exits 1 when any failed (``--allow_failures``: 0), 2 when it could
not run (one line: a bad option, device or ``--out_dir``, a metric whose inputs no utterance has, e.g.
``--metrics mcd`` without reference audio). Ctrl-C/SIGTERM stop after the current chunk: the rows so far are
kept in ``per_utterance.csv``, ``--skip_existing`` then scores only the rest (exit 130/143).  Metrics and their
definitions: ``evaluation/README.md``. The work is :func:`evaluation.runner.evaluate` (also what the benchmark
calls); this module is its command line.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from bins.common import run_cli
from evaluation.asr import ASR_BACKENDS, DEFAULT_ASR
from evaluation.hf_loading import ModelUnavailableError
from evaluation.pairing import PairingError
from evaluation.runner import DEFAULT_METRICS, EvaluationOptions, evaluate
from models.base.inference import write_bad_list
from utils.batch import add_rerun_arguments, exit_status, summary_lines
from utils.cli import ArgumentParser
from utils.devices import resolve_device
from utils.io import check_writable_dir
from utils.registry import RegistryError, names
from utils.wording import agree

logger = logging.getLogger("echelon.evaluate")


def parse_systems(specs: List[str]) -> Dict[str, Path]:
    """``["name=dir", ...]`` -> ``{name: Path(dir)}``; a bad or repeated name is an error."""
    systems: Dict[str, Path] = {}
    for spec in specs:
        name, sep, directory = spec.partition("=")
        if not sep:
            name, directory = Path(spec).name, spec
        name = name.strip()
        if not name or not directory:
            raise ValueError(f"--system {spec!r}: expected NAME=DIR")
        if name in systems:
            raise ValueError(f"--system {spec!r}: system name {name!r} given twice")
        systems[name] = Path(directory)
    return systems


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="echelon-evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("--system", action="append", required=True, metavar="NAME=DIR",
                        help="a system's generated-audio directory (repeat for several systems)")
    parser.add_argument("--manifest", required=True, type=Path, help="reference manifest (JSONL)")
    parser.add_argument("--prompts", type=Path, help="prompt mapping: JSON {id: wav} or TSV id<TAB>wav")
    parser.add_argument("--out_dir", "--out-dir", required=True, type=Path)
    parser.add_argument("--metrics", default=None,
                        help=f"comma-separated metric names (default {','.join(DEFAULT_METRICS)}, less those whose "
                             "inputs no utterance has)")
    parser.add_argument("--asr", default=DEFAULT_ASR, choices=tuple(ASR_BACKENDS),
                        help="ASR for WER/CER (default faster-whisper with the installed Whisper base)")
    parser.add_argument("--asr_model", "--asr-model",
                        help="faster-whisper: base (default, installed), tiny.en (installed), a CTranslate2 dir or a "
                             "hub id (Systran/faster-whisper-large-v3); whisper: openai/whisper-large-v3")
    parser.add_argument("--sim_backend", "--sim-backend", default="resemblyzer", choices=("resemblyzer", "wavlm"))
    parser.add_argument("--sim_model", "--sim-model", help="hub id or local dir (wavlm: microsoft/wavlm-base-plus-sv)")
    parser.add_argument("--f0_method", "--f0-method", default="yaapt", choices=("yaapt", "dio", "harvest"))
    parser.add_argument("--align", default="dtw", choices=("dtw", "trim"))
    parser.add_argument("--batch_size", "--batch-size", type=int, default=8)
    parser.add_argument("--chunk_size", "--chunk-size", type=int, default=32)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rank_by", "--rank-by", help="column choosing the best/worst items to plot")
    parser.add_argument("--no_plots", "--no-plots", action="store_true")
    add_rerun_arguments(
        parser, skip_existing="reuse the rows of out_dir/per_utterance.csv that have every metric (an interrupted run)",
        allow_failures="exit 0 even when some utterances could not be scored (they are still listed)")
    return parser


def main_unchecked(argv: List[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    systems = parse_systems(args.system)
    metrics = [m.strip() for m in (args.metrics or ",".join(DEFAULT_METRICS)).split(",") if m.strip()]
    unknown = [m for m in metrics if m not in names("metric")]
    if unknown:
        raise RegistryError(f"unknown {agree(len(unknown), 'metric', 'metrics')} {', '.join(unknown)}; known: "
                            f"{', '.join(names('metric'))}")
    options = EvaluationOptions(
        metrics=metrics, asr=args.asr, asr_model=args.asr_model, sim_backend=args.sim_backend,
        sim_model=args.sim_model, f0_method=args.f0_method, align=args.align, batch_size=args.batch_size,
        device=resolve_device(args.device), chunk_size=args.chunk_size, plots=not args.no_plots, rank_by=args.rank_by,
        explicit_metrics=args.metrics is not None,
    )
    check_writable_dir(args.out_dir, "--out_dir", create=False)  # before anything is scored
    failed: List[Tuple[str, str, str]] = []
    try:
        payload = evaluate(systems, args.manifest, args.out_dir, args.prompts, options, failed=failed,
                           skip_existing=args.skip_existing, quiet=args.quiet)
    except (PairingError, ModelUnavailableError, ValueError, ImportError) as err:
        print(f"echelon-evaluate: {err}", file=sys.stderr)
        return 2
    bad_list = write_bad_list(args.out_dir, failed) if failed else None
    failures = [(uid, err) for uid, _, err in failed]
    if "stopped" in payload:
        print(summary_lines(payload["n_scored"] - payload["kept"], failures, bad_list, verb="scored",
                            kept=payload["kept"], not_started=payload["not_started"], stopped=True))
        return payload["stopped"]
    print((args.out_dir / "summary.md").read_text(encoding="utf-8"))
    scored = sum(s["n_items"] for s in payload["systems"].values()) - payload["kept"]
    print(summary_lines(scored, failures, bad_list, verb="scored", kept=payload["kept"]))
    return exit_status(len(failed), args.allow_failures)


def main(argv: Optional[List[str]] = None) -> int:
    return run_cli("echelon-evaluate", main_unchecked, argv)


if __name__ == "__main__":
    sys.exit(main())
