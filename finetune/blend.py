"""Step 6 of ``echelon-finetune`` (:mod:`finetune.run`, ``--blend``): when the kept voice is much noisier than
the reader's recordings, its decoder moved part of the way back to the base voice's.

Why: on a minute of speech the decoder learns the reader's timbre and, with it, a haze of diffuse energy from
2 to 8 kHz that stays up between words (DNSMOS OVRL 0.3-0.7 under the recordings on 7 of 16 readers). The
weights between the base voice's decoder and the fine-tuned one (``base + w * (tuned - base)``, the effective
weights of each layer) keep most of the likeness and little of the haze: LibriSpeech reader 2609's kept voice
(10 held-out sentences; SIM / DNSMOS, recordings 2.95) went 0.789 / 2.66 at w = 1, 0.790 / 2.75 at 0.8,
0.775 / 2.91 at 0.65, 0.733 / 3.16 at 0.5; reader 367's (recordings 2.77) 0.745 / 1.97 at 1, 0.733 / 2.47 at
0.7, 0.712 / 2.71 at 0.6. Whisper's WER fell as w did. Swapping the base voice's whole decoder back cost far
more likeness (367: 0.569 / 3.16).

The rule (``auto``): nothing happens when the kept voice's DNSMOS is within :data:`DNSMOS_MARGIN` of the
recordings'. Otherwise the weights :data:`BLEND_WEIGHTS` are scored in turn on the held-out sentences. A weight
counts when it is within the WER limit and gives back at most :data:`LIKENESS_GIVEN_BACK` of the SIM the
training gained. The first that comes within :data:`AIM_MARGIN` is kept; failing that, the first within
:data:`DNSMOS_MARGIN`. When none is, the voice stays as trained: some voices' haze does not yield to the blend
(VCTK p228: DNSMOS 2.86 -> 2.89 -> 2.92 -> 3.02 for SIM 0.756 -> 0.745 -> 0.716 -> 0.680), and their likeness
is worth more than that. A number ``W`` in (0, 1) applies that weight whatever it scores; ``off`` never
blends.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

from finetune.results import SAMPLES, ResultsBook, write_samples
from finetune.scoring import VoiceScorer
from models.base.finetune import FinetuneError, VoiceFinetuner

log = logging.getLogger("echelon.finetune")

#: decoder weights tried, from the fine-tuned voice towards the base voice (2609 and 367 above)
BLEND_WEIGHTS = (0.8, 0.65, 0.5)
#: clean enough: a DNSMOS OVRL at most this far under the reader's own recordings (issue 46's bar); a kept
#: voice within it is left as trained
DNSMOS_MARGIN = 0.3
#: ... but a blend aims this far under, when a weight that counts gets there: the independent sentences (piper-tts,
#: 25 others) score the blended voices 0.07-0.15 lower than the 20 in-run ones (533 2.78 / 2.70, 2609 2.73 / 2.58,
#: 2033 3.01 / 2.91) while their SIM held (533 at w = 0.65: 0.692 in-run and independent, 2609 0.773 / 0.777)
AIM_MARGIN = 0.2
#: ... and the share of the likeness gained (the kept voice's SIM over the base voice's) a blend may give back
#: for it: 367 gained 0.307 and came within 0.3 at w = 0.65 for 0.056 of it
LIKENESS_GIVEN_BACK = 0.25
#: where the kept voice as trained goes when a blend replaces ``EXP/voice`` (nothing the run made is lost)
TRAINED_VOICE = "voice_as_trained"


def keep_trained_voice(exp_dir: Path) -> Path:
    """Copy ``EXP/voice`` (the kept checkpoint as trained) to ``EXP/voice_as_trained``, published atomically."""
    import shutil

    from utils.io import make_temp_dir, publish_dir

    tmp = make_temp_dir(exp_dir)
    shutil.copytree(exp_dir / "voice", tmp, dirs_exist_ok=True)
    return publish_dir(tmp, exp_dir / TRAINED_VOICE)


def parse_blend(value: str) -> Optional[float]:
    """``--blend``: "auto" -> None (the rule), "off" -> 1.0, a number in (0, 1] -> itself; else FinetuneError."""
    if value == "auto":
        return None
    if value == "off":
        return 1.0
    try:
        weight = float(value)
    except ValueError:
        weight = float("nan")
    if not 0.0 < weight <= 1.0:
        raise FinetuneError(f"--blend {value}: auto, off, or the decoder's weight, a number in (0, 1]")
    return weight


def choose_blend(rows: List[Dict[str, Any]], target: float, wer_limit: float,
                 sim_floor: float) -> Optional[Dict[str, Any]]:
    """The first row (in the order tried) with a DNSMOS of at least ``target``, a WER within ``wer_limit`` and
    a SIM of at least ``sim_floor``; None when no row is all three."""
    return next((r for r in rows if r["dnsmos"] >= target and r["wer"] <= wer_limit and r["sim"] >= sim_floor),
                None)


def blend_voice(finetuner: VoiceFinetuner, scorer: VoiceScorer, book: ResultsBook, tempo: float, exp_dir: Path,
                weight: Optional[float]) -> None:
    """Apply the rule (``weight`` None) or a fixed weight to ``EXP/voice``; the rows go to ``book.blends``,
    the outcome to ``book.blend``, and a chosen blend replaces ``EXP/voice`` and ``EXP/samples``. A voice that
    is a blend already stays as it is."""
    kept = book.best()
    if kept is None or weight == 1.0:
        return
    done = (book.blend or {}).get("weight", 1.0)
    if done != 1.0:  # a resumed run with no new best: voice/ is the blend, voice_as_trained/ what it came from
        log.info("%s holds step %d's decoder blended at %.2f already: kept as it is (as trained: %s)",
                 exp_dir / "voice", kept["step"], done, exp_dir / TRAINED_VOICE)
        return
    target = book.reader["dnsmos"] - DNSMOS_MARGIN
    if weight is None and kept["dnsmos"] >= target:
        book.blend = {"weight": 1.0, "step": kept["step"], "why": f"DNSMOS within {DNSMOS_MARGIN} of the recordings"}
        return
    floor = kept["sim"] - LIKENESS_GIVEN_BACK * max(0.0, kept["sim"] - book.base["sim"])
    aim = book.reader["dnsmos"] - AIM_MARGIN
    rows, heard = [], {}  # heard: weight -> (wavs, per-sentence scores)
    started = time.process_time()
    for w in BLEND_WEIGHTS if weight is None else (weight,):
        if not finetuner.blend_with_base(exp_dir / "voice", w):
            log.info("this family's voices cannot be blended with the base voice: the kept voice stays as it is")
            return
        wavs, scores = scorer.speak_and_score(lambda texts: finetuner.speak(texts, tempo), finetuner.frame_rate_hz)
        rows.append({"weight": w, "step": kept["step"], **scores.summary()})
        heard[w] = (wavs, scores.utterances)
        log.info("decoder blend %.2f of step %d: WER %.1f %%, SIM %.3f, DNSMOS %.2f", w, kept["step"],
                 100 * rows[-1]["wer"], rows[-1]["sim"], rows[-1]["dnsmos"])
        book.blends = rows
        book.notes["blend CPU minutes"] = round((time.process_time() - started) / 60, 2)
        book.save()
        if rows[-1]["sim"] < floor or choose_blend(rows[-1:], aim, book.wer_limit, floor):
            break  # lower weights give back more likeness still
    chosen = rows[-1] if weight is not None else (choose_blend(rows, aim, book.wer_limit, floor)
                                                  or choose_blend(rows, target, book.wer_limit, floor))
    if chosen is None:
        book.blend = {"weight": 1.0, "step": kept["step"],
                      "why": f"no blend reached DNSMOS {target:.2f} within the WER limit and SIM {floor:.3f}"}
        log.info("the voice stays as trained: %s", book.blend["why"])
        return
    if chosen is not rows[-1]:
        finetuner.blend_with_base(exp_dir / "voice", chosen["weight"])
    wavs, utterances = heard[chosen["weight"]]
    keep_trained_voice(exp_dir)
    finetuner.save_voice(exp_dir / "voice", tempo)
    write_samples(exp_dir / "samples", wavs[:SAMPLES])
    book.best_utterances = utterances
    book.blend = {"weight": chosen["weight"], "step": kept["step"]}
    log.info("decoder blended at %.2f towards the base voice: DNSMOS %.2f -> %.2f (recordings %.2f), SIM %.3f -> "
             "%.3f, WER %.1f %% -> %.1f %%", chosen["weight"], kept["dnsmos"], chosen["dnsmos"],
             book.reader["dnsmos"], kept["sim"], chosen["sim"], 100 * kept["wer"], 100 * chosen["wer"])
