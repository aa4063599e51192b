"""``echelon-finetune``: a folder of someone's recordings + a pretrained voice -> their voice, measured.

Steps (each logged; ``EXP/finetune.log`` keeps them):

1. cheap checks: the folders, the base checkpoint and its family's finetuner, ``EXP`` (a rerun refuses
   without ``--resume`` or ``--overwrite``; ``--overwrite`` moves the old run to ``EXP/previous_runs/<time>``);
2. the reader's data (:mod:`finetune.data`): decoded, checked, split, normalised, transcribed -> ``EXP/data``;
   under :data:`finetune.data.MIN_SPEECH_SECONDS` of usable speech is a one-line error;
3. the base voice's one-time preparation (the family's ``prepare_base``, cached in ``--cache_dir``);
4. scores of the base voice and of the reader's recordings (:mod:`finetune.scoring`), the reader's tempo and
   pitch: a reader :data:`finetune.results.PITCH_GAP_SEMITONES` or more from the base voice is fitted on the
   recordings played slower, halfway down to the base voice's pitch, and the voice plays its output that
   much faster (:func:`match_pitch`; ``--pitch_match off`` never);
5. training under the CPU budget; every ``--eval_every`` steps the voice is scored on the held-out sentences
   and, when it is the best so far by :func:`finetune.results.choose_best`, written to ``EXP/voice``;
6. when the kept voice is much noisier than the recordings (DNSMOS), its decoder moved part of the way back to
   the base voice's (:mod:`finetune.blend`, ``--blend``);
7. ``EXP/voice.onnx`` + ``.onnx.json`` (Piper's format, checked to load in onnxruntime), ``EXP/results.md``.

Ctrl-C stops after the current step with the checkpoint saved (exit 130); ``--resume`` continues it, keeping
the prepared data, the scores and the best voice so far.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from finetune.blend import TRAINED_VOICE, blend_voice, parse_blend
from finetune.data import MIN_SPEECH_SECONDS, prepare_reader_data
from finetune.results import (PATIENCE, SAMPLES, ResultsBook, over_limit_streak, pitch_gap, pitch_warning,
                              playback_ratio, write_samples)
from finetune.scoring import VoiceScorer, VoiceScores
from models.base.finetune import FinetuneBudget, FinetuneError, VoiceFinetuner, finetuner_for
from processors.audio import load_audio
from processors.data.manifest import read_manifest
from utils.wording import plural

log = logging.getLogger("echelon.finetune")

HELD_OUT_TEXTS = Path(__file__).resolve().parents[1] / "processors" / "data" / "texts" / "echelon_test_sentences.txt"
#: a measured tempo ratio outside this range is a measurement gone wrong (mostly silence, a wrong transcript)
LENGTH_SCALE_RANGE = (0.6, 1.6)


@dataclass
class FinetuneOptions:
    """What ``echelon-finetune`` was asked (every field is a flag of ``bins/finetune.py``)."""

    audio_dir: Path
    base_ckpt_dir: Path
    exp_dir: Path
    cpu_minutes: Optional[float] = 30.0
    max_steps: Optional[int] = None
    threads: Optional[int] = None
    resume: bool = False
    overwrite: bool = False
    eval_every: int = 100
    eval_sentences: int = 20
    asr_model: str = "base"
    cache_dir: Optional[Path] = None
    sim_reference_dir: Optional[Path] = None  # recordings whose mean embedding SIM compares with (default: DIR's)
    seed: int = 1234
    progress: bool = True
    max_wer: Optional[float] = None  # the WER (a fraction) a chosen checkpoint may reach; None: WER_CEILING
    settings: List[str] = field(default_factory=list)  # --set KEY=VALUE: the fine-tuning experiment config
    pitch_match: bool = True  # a reader far from the base voice's pitch is fitted slowed, played faster
    blend: str = "auto"  # the kept decoder moved back towards the base voice's when hazy (finetune.blend)


def default_cache_dir() -> Path:
    return Path(os.environ.get("ECHELON_CACHE", Path.home() / ".cache" / "echelon")) / "finetune"


def held_out_sentences(count: int) -> List[str]:
    lines = [" ".join(line.split()) for line in HELD_OUT_TEXTS.read_text(encoding="utf-8").splitlines()]
    texts = [line for line in lines if line and not line.startswith("#")]
    if count < 1 or count > len(texts):
        raise FinetuneError(f"--eval_sentences {count}: choose 1 to {len(texts)}")
    return texts[:count]


def prepare_exp_dir(opts: FinetuneOptions) -> Optional[Path]:
    """Refuse a rerun without --resume / --overwrite; with --overwrite move the old run aside (returned)."""
    exp = Path(opts.exp_dir)
    if exp.exists() and not exp.is_dir():
        raise FinetuneError(f"--exp_dir {exp} is a file")
    entries = [p for p in exp.iterdir() if p.name != "previous_runs"] if exp.is_dir() else []
    if opts.resume and opts.overwrite:
        raise FinetuneError("--resume continues the run in --exp_dir and --overwrite moves it aside: give one")
    if not entries or opts.resume:
        return None
    if not opts.overwrite:
        raise FinetuneError(f"{exp} already holds a fine-tuning run: --resume to continue it, --overwrite to start "
                            f"again (the old run is moved to {exp / 'previous_runs'}/)")
    target = exp / "previous_runs" / time.strftime("%Y%m%d-%H%M%S")
    target.mkdir(parents=True, exist_ok=False)
    for entry in entries:
        os.replace(entry, target / entry.name)
    return target


def check_options(opts: FinetuneOptions) -> None:
    if not Path(opts.audio_dir).is_dir():
        raise FinetuneError(f"--audio_dir {opts.audio_dir}: no such directory")
    if opts.cpu_minutes is not None and not opts.cpu_minutes > 0:
        raise FinetuneError(f"--cpu_minutes {opts.cpu_minutes}: must be positive")
    if opts.max_steps is not None and opts.max_steps < 1:
        raise FinetuneError(f"--max_steps {opts.max_steps}: must be at least 1")
    if opts.cpu_minutes is None and opts.max_steps is None:
        raise FinetuneError("give --cpu_minutes or --max_steps (or both): training needs a budget")
    if opts.eval_every < 1:
        raise FinetuneError(f"--eval_every {opts.eval_every}: must be at least 1")
    if opts.sim_reference_dir is not None and not Path(opts.sim_reference_dir).is_dir():
        raise FinetuneError(f"--sim_reference_dir {opts.sim_reference_dir}: no such directory")
    if opts.max_wer is not None and not 0 < opts.max_wer < 1:
        raise FinetuneError(f"--max_wer {100 * opts.max_wer:g}: a percentage between 0 and 100")
    if opts.threads is not None and opts.threads < 1:
        raise FinetuneError(f"--threads {opts.threads}: must be at least 1")
    parse_blend(opts.blend)


def load_utterances(manifest: Path) -> Tuple[List[Tuple[np.ndarray, int]], List[str]]:
    entries = read_manifest(manifest)
    return [(load_audio(e.path, None), int(e.sample_rate or 0) or _rate(e.path)) for e in entries], \
        [e.text for e in entries]


def reference_recordings(folder: Path) -> List[Tuple[np.ndarray, int]]:
    """Every usable recording under ``folder`` (the SIM reference), at its own rate: a file that does not decode
    or that the data preparation would refuse (silent, clipped, not speech) is left out and logged: one
    silent take in the mean embedding moves every voice's SIM (reader 533's base voice: 0.462 without it, 0.479
    with it, which understated the fine-tuned voice's gain)."""
    from processors.audio import AudioError
    from processors.data.recordings import RecordingSettings, audio_candidates, check_take

    wavs, settings = [], RecordingSettings()
    for path in audio_candidates(Path(folder)):
        try:
            wav, rate = load_audio(path, None), _rate(str(path))
        except AudioError:
            log.info("SIM reference: left out %s (not audio)", path.name)
            continue
        why = check_take(wav, rate, settings)
        if why:
            log.info("SIM reference: left out %s (%s)", path.name, why)
            continue
        wavs.append((wav, rate))
    if not wavs:
        raise FinetuneError(f"--sim_reference_dir {folder}: no readable recording")
    return wavs


def _rate(path: str) -> int:
    from processors.audio import audio_info

    return int(audio_info(path).samplerate)


def tempo_length_scale(base: VoiceScores, reader: VoiceScores) -> float:
    """How much slower than the base voice the reader speaks (phonemes per second), within a sane range."""
    if reader.rate <= 0 or base.rate <= 0:
        return 1.0
    low, high = LENGTH_SCALE_RANGE
    return float(min(max(base.rate / reader.rate, low), high))


class Evaluator:
    """The callback training calls every ``eval_every`` steps: score, record, keep the best voice."""

    def __init__(self, finetuner: VoiceFinetuner, scorer: VoiceScorer, book: ResultsBook, length_scale: float,
                 exp_dir: Path) -> None:
        self.finetuner, self.scorer, self.book = finetuner, scorer, book
        self.length_scale, self.exp_dir = length_scale, exp_dir
        self.last_step: Optional[int] = None

    def __call__(self, step: int, cpu_minutes: float) -> Optional[str]:
        """Score the current weights; a reason to stop when the last :data:`PATIENCE` scores were all over the
        WER limit."""
        if not any(r["step"] == step for r in self.book.checkpoints):
            self.evaluate(step, cpu_minutes)
        self.last_step = step
        if over_limit_streak(self.book.checkpoints, self.book.base["wer"], self.book.wer_ceiling) >= PATIENCE:
            return (f"stopped early: the last {PATIENCE} evaluations were over the WER limit of "
                    f"{100 * self.book.wer_limit:.0f} %")
        return None

    def evaluate(self, step: int, cpu_minutes: float) -> None:
        started = time.process_time()
        wavs, scores = self.scorer.speak_and_score(lambda texts: self.finetuner.speak(texts, self.length_scale),
                                                   self.finetuner.frame_rate_hz)
        row = {"step": step, "cpu_minutes": round(cpu_minutes, 2), **scores.summary()}
        if self.book.add_checkpoint(row):
            self.finetuner.save_voice(self.exp_dir / "voice", self.length_scale)
            self.book.blend, self.book.blends = None, []  # the new voice has not been through the blend step
            shutil.rmtree(self.exp_dir / TRAINED_VOICE, ignore_errors=True)  # a superseded voice's copy
            self.book.best_utterances = scores.utterances
            write_samples(self.exp_dir / "samples", wavs[:SAMPLES])
            row["saved"] = True
        self.book.notes["eval_cpu_minutes"] = round(self.book.notes.get("eval_cpu_minutes", 0.0)
                                                    + (time.process_time() - started) / 60, 2)
        self.book.save()
        log.info("step %d (%.1f CPU min): WER %.1f %%, SIM %.3f, DNSMOS %.2f%s%s", step, row["cpu_minutes"],
                 100 * row["wer"], row["sim"], row["dnsmos"],
                 f", frame-rate buzz {row['buzz_db']:.1f} dB" if "buzz_db" in row else "",
                 "  <- best so far, saved to voice/" if row.get("saved") else "")


def _progress(stage: str, done: int, total: int) -> None:
    if done == total or done % max(1, total // 10) == 0:
        log.info("%s: %d/%d", stage, done, total)


def prepare(opts: FinetuneOptions, finetuner: VoiceFinetuner, book: ResultsBook) -> Dict[str, Any]:
    """Steps 2-3: the reader's data (one-line error when too little is usable) and the base voice."""
    data = prepare_reader_data(opts.audio_dir, opts.exp_dir / "data", finetuner.sample_rate, finetuner.check_text,
                               opts.asr_model, opts.threads or 0, resume=opts.resume,
                               on_file=lambda i, n, name: _progress("recordings", i, n))
    book.data = data
    for item in data["skipped"]:
        log.warning("skipped %s: %s", item["item"], item["reason"])
    if data["seconds"] < MIN_SPEECH_SECONDS:
        book.save()
        raise FinetuneError(f"--audio_dir {opts.audio_dir}: only {data['seconds']:.1f} s of usable speech "
                            f"({plural(len(data['skipped']), 'file or piece', 'files or pieces')} skipped, see {opts.exp_dir}/results.md); "
                            f"at least {MIN_SPEECH_SECONDS:.0f} s are needed")
    log.info("reader data: %d utterances, %.1f s of speech, %d skipped", data["utterances"], data["seconds"],
             len(data["skipped"]))
    base = finetuner.prepare_base(opts.cache_dir or default_cache_dir(), _progress)
    book.notes["base voice"] = str(opts.base_ckpt_dir)
    book.notes.update({f"base {k}": v for k, v in base.items()})
    return data


def baseline(finetuner: VoiceFinetuner, scorer: VoiceScorer, book: ResultsBook,
             manifest: Path, pitch_match: bool = True) -> float:
    """Step 4: the base voice's and the recordings' rows (kept on --resume), the playback ratio that meets the
    reader's pitch (:func:`match_pitch`); returns the length scale that gives the reader's tempo."""
    if book.reader is None:
        wavs, texts = load_utterances(manifest)
        book.reader = scorer.score_recordings(wavs, texts, finetuner.frame_rate_hz, pitch=True).summary()
    if book.base is None:
        book.base = scorer.score_voice(lambda texts: finetuner.speak(texts), finetuner.frame_rate_hz,
                                       pitch=True).summary()
    reader = VoiceScores(book.reader["wer"], book.reader["sim"], book.reader["dnsmos"], book.reader["rate"])
    base = VoiceScores(book.base["wer"], book.base["sim"], book.base["dnsmos"], book.base["rate"])
    ratio = match_pitch(finetuner, book) if pitch_match else 1.0
    scale = tempo_length_scale(base, reader) * ratio  # the output is played ratio times faster
    book.notes["length_scale"] = round(scale, 3)
    book.save()
    log.info("base voice: WER %.1f %%, SIM %.3f; reader's recordings: SIM %.3f; tempo: length scale %.3f "
             "(WER limit of a kept checkpoint %.1f %%)", 100 * base.wer, base.sim, reader.sim, scale,
             100 * book.wer_limit)
    warning = pitch_warning(book.base, book.reader, ratio)
    if warning:
        log.warning(warning)
    return scale


def match_pitch(finetuner: VoiceFinetuner, book: ResultsBook) -> float:
    """Give the finetuner the playback ratio of the reader's pitch gap (:func:`finetune.results.playback_ratio`;
    recomputed from the kept rows on --resume, so the same); returns the ratio it took (1: none)."""
    gap = pitch_gap(book.base, book.reader)
    ratio = playback_ratio(gap)
    if ratio == 1.0:
        return 1.0
    rate = finetuner.set_playback_ratio(ratio)
    if rate is None:
        log.warning("this family's voices cannot play at another rate: the reader's pitch is not matched")
        return 1.0
    book.notes.update({"playback_ratio": round(ratio, 4), "voice_sample_rate": rate})
    log.info("pitch match: the reader is %.1f semitones from the base voice; training on the recordings played "
             "%.3f times slower, the voice plays that much faster (%d Hz)", gap, ratio, rate)
    return ratio


def skipped_summary(skipped: List[Dict[str, Any]], listing: Path, named: int = 5) -> str:
    """The run's last words on what it left out: the files themselves when few, else how many."""
    if not skipped:
        return "nothing skipped"
    names = [Path(str(item["item"])).name for item in skipped]
    shown = ", ".join(names[:named]) + (f" and {len(names) - named} more" if len(names) > named else "")
    return f"{plural(len(names), 'file or piece', 'files or pieces')} skipped ({shown}), listed in {listing}"


def export_voice(finetuner: VoiceFinetuner, exp_dir: Path) -> List[Path]:
    """Step 7: ``EXP/voice.onnx`` (+ json), checked to load in onnxruntime."""
    import onnxruntime

    paths = finetuner.export(exp_dir / "voice", exp_dir / "voice.onnx")
    for path in paths:
        if path.suffix == ".onnx":
            onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return paths


def run_finetune(opts: FinetuneOptions) -> int:
    """The whole command (see the module doc); returns the exit status."""
    check_options(opts)
    opts.exp_dir = Path(opts.exp_dir)
    finetuner = finetuner_for(opts.base_ckpt_dir, opts.exp_dir)  # a wrong base fails before anything is written
    finetuner.settings = list(opts.settings)
    finetuner.check_settings()  # an unknown or ill-typed --set fails here, before anything is written
    moved = prepare_exp_dir(opts)
    if moved is not None:
        log.info("the earlier run was moved to %s", moved)
    opts.exp_dir.mkdir(parents=True, exist_ok=True)
    with log_file(opts.exp_dir / "finetune.log"):
        return _run(opts, finetuner)


@contextlib.contextmanager
def log_file(path: Path) -> Iterator[None]:
    """Everything logged while the run goes on is also appended to ``path``."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(handler)
        handler.close()


def _run(opts: FinetuneOptions, finetuner: VoiceFinetuner) -> int:
    import torch

    if opts.threads:
        torch.set_num_threads(opts.threads)
    book = ResultsBook.load(opts.exp_dir) if opts.resume else ResultsBook(opts.exp_dir)
    if opts.max_wer is not None:
        book.wer_ceiling = opts.max_wer
    data = prepare(opts, finetuner, book)
    sentences = held_out_sentences(opts.eval_sentences)
    wavs = reference_recordings(opts.sim_reference_dir) if opts.sim_reference_dir else \
        load_utterances(Path(data["manifest"]))[0]
    scorer = VoiceScorer(wavs, sentences, opts.asr_model, opts.threads or 0)
    book.notes["SIM reference"] = str(opts.sim_reference_dir or "the usable recordings of --audio_dir")
    book.notes.update({"asr_model": opts.asr_model, "sentences": len(sentences), "threads": torch.get_num_threads()})
    if opts.settings:
        book.notes["settings"] = " ".join(opts.settings)
    # a resumed run keeps the ratio its checkpoints were trained at, whatever --pitch_match says now
    pitch_match = "playback_ratio" in book.notes if opts.resume and book.base is not None else opts.pitch_match
    scale = baseline(finetuner, scorer, book, Path(data["manifest"]), pitch_match)
    evaluator = Evaluator(finetuner, scorer, book, scale, opts.exp_dir)
    budget = FinetuneBudget(opts.cpu_minutes, opts.max_steps, opts.eval_every, opts.seed)
    report = finetuner.train(Path(data["manifest"]), budget, evaluator, opts.resume, opts.progress)
    book.notes.update({"stopped by": report.stopped_by, "steps": report.step,
                       "training CPU minutes": round(report.cpu_minutes, 2),
                       "mixed precision": report.details.get("precision", "no")})
    if report.details.get("exit_code"):
        book.save()
        log.warning("stopped at step %d: its checkpoint is saved; --resume continues", report.step)
        return int(report.details["exit_code"])
    if evaluator.last_step != report.step:  # the budget ran out between two evaluations: score the last weights
        evaluator(report.step, report.cpu_minutes)
    blend_voice(finetuner, scorer, book, scale, opts.exp_dir, parse_blend(opts.blend))
    exported = export_voice(finetuner, opts.exp_dir)
    book.notes["exported"] = ", ".join(p.name for p in exported)
    book.save()
    voice = book.voice_row() or {}
    blend = (book.blend or {}).get("weight", 1.0)
    log.info("voice: %s (step %s%s) - SIM %.3f -> %.3f, WER %.1f %% -> %.1f %%, DNSMOS %.2f -> %.2f; %s",
             opts.exp_dir / "voice", voice.get("step"), f", decoder blended {blend:.2f}" if blend != 1.0 else "",
             book.base["sim"], voice.get("sim", float("nan")), 100 * book.base["wer"],
             100 * voice.get("wer", float("nan")), book.base["dnsmos"], voice.get("dnsmos", float("nan")),
             skipped_summary(data["skipped"], opts.exp_dir / "results.md"))
    return 0
