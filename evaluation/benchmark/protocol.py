"""The test protocol: seeded job lists over a test manifest, one list per task, written out exactly.

Tasks (``TASKS`` in config.py):

* ``tts_cross_sentence`` - zero-shot TTS: the text of a test utterance, the prompt ANOTHER utterance of the same
  speaker (never the target itself); reference = the target recording (parallel: F0, MCD, SIM-ref).
* ``tts_continuation`` - the first ``prefix_seconds`` of the target recording are the prompt and its whole
  transcript the text and prompt text (VALL-E's continuation protocol); utterances under prefix + 1 s are left out.
* ``vc`` - a test utterance (source) in the voice of another real speaker's utterance (prompt); the source is
  the reference of F0 (prosody kept) and WER (words kept).
* ``tts`` - plain TTS for systems without prompts (single-speaker or named speakers): text only.

Every choice comes from ``random.Random(seed)`` over id-sorted lists: same manifests + seed = same lists.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from evaluation.benchmark.config import ProtocolConfig
from processors.data.manifest import read_jsonl


def read_manifest(path: Path) -> List[dict]:
    """Manifest rows through the one JSONL reader (relative paths: to the manifest's folder), paths absolute."""
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    rows = read_jsonl(path, ("id", "path", "speaker"), ("path",))
    for row in rows:
        row["path"], row["speaker"] = str(Path(row["path"]).resolve()), str(row["speaker"])
    return rows


def is_synthetic(row: dict) -> bool:
    return "synth" in str(row.get("source", "")).lower() or str(row["speaker"]).startswith("synth_")


def build_lists(test: List[dict], pool: List[dict], seed: int, max_items: int | None) -> Dict[str, List[dict]]:
    rng = random.Random(seed)
    by_speaker: Dict[str, List[dict]] = defaultdict(list)
    for row in sorted(pool, key=lambda r: r["id"]):
        by_speaker[row["speaker"]].append(row)
    speakers = sorted(by_speaker)
    test = sorted(test, key=lambda r: r["id"])
    if max_items:
        test = test[:max_items]
    tts, vc, skipped = [], [], []
    for row in test:
        text = (row.get("text") or "").strip()
        others = [r for r in by_speaker[row["speaker"]] if r["id"] != row["id"]]
        if text and others:
            prompt = rng.choice(others)
            tts.append({"id": row["id"], "text": text, "prompt": prompt["path"], "prompt_id": prompt["id"],
                        "speaker": row["speaker"], "path": row["path"]})  # fmt: skip
        elif text:
            skipped.append({"id": row["id"], "list": "tts", "why": f"speaker {row['speaker']} has no other clip"})
        # Real target voices when the corpus has any (synthetic ones only train), else whatever there is.
        targets = [s for s in speakers if s != row["speaker"] and not is_synthetic(by_speaker[s][0])]
        targets = targets or [s for s in speakers if s != row["speaker"]]
        if not targets:
            skipped.append({"id": row["id"], "list": "vc", "why": "the corpus has a single speaker"})
            continue
        target = rng.choice(targets)
        prompt = rng.choice(by_speaker[target])
        name = f"{Path(row['path']).stem}_to_{Path(prompt['path']).stem}"  # the VC CLI's output name
        vc.append({"id": name, "path": row["path"], "source_id": row["id"], "text": text,
                   "prompt": prompt["path"], "prompt_id": prompt["id"], "speaker": target})  # fmt: skip
    real = [r for r in test if not is_synthetic(r) and int(r.get("sample_rate", 16000)) >= 16000]
    real.sort(key=lambda r: (float(r.get("duration", 0.0)), r["id"]))  # the shortest: SR at 48 kHz is the slow part
    sr = [{"id": real[0]["id"], "path": real[0]["path"]}] if real else []
    ids = [job["id"] for job in vc]
    clash = sorted({i for i in ids if ids.count(i) > 1})
    if clash:
        raise ValueError(f"VC output names collide (same file stems in different folders): {', '.join(clash)}")
    return {"tts": tts, "vc": vc, "sr": sr, "skipped": skipped}


@dataclass
class Job:
    """One item of one task. Paths are absolute; ``reference`` is the parallel recording (None: none)."""

    id: str
    text: str = ""
    reference: Optional[str] = None
    prompt: Optional[str] = None
    prompt_text: str = ""
    source: Optional[str] = None
    speaker: str = ""


def _pool(cfg: ProtocolConfig) -> List[dict]:
    paths = [Path(p) for p in cfg.pool] or [Path(cfg.manifest).parent / f"{s}.jsonl" for s in ("train", "valid", "test")]
    paths = [p for p in paths if p.is_file()] or [Path(cfg.manifest)]
    rows = {r["id"]: r for p in paths for r in read_manifest(p)}
    return list(rows.values())


def _write_prefix(row: dict, seconds: float, out_dir: Path) -> Optional[str]:
    from processors.audio import load_audio, save_audio

    wav = load_audio(row["path"], None)
    rate = int(row.get("sample_rate") or 16000)
    samples = int(round(seconds * rate))
    if wav.shape[-1] < samples + rate:  # under prefix + 1 s: nothing left to continue
        return None
    return str(save_audio(out_dir / f"{row['id']}.wav", wav[:samples], rate))


def build_protocol(cfg: ProtocolConfig, out_dir: Path) -> Tuple[Dict[str, List[Job]], List[dict]]:
    """``({task: [Job]}, skipped)`` for the configured tasks; continuation prefixes are written under ``out_dir``."""
    test = read_manifest(Path(cfg.manifest))
    if not test:
        raise ValueError(f"{cfg.manifest}: the test manifest is empty")
    pool = _pool(cfg)
    texts = {r["id"]: (r.get("text") or "").strip() for r in pool + test}
    lists = build_lists(test, pool, cfg.seed, cfg.max_items or None)
    chosen = sorted(test, key=lambda r: r["id"])[: cfg.max_items or None]
    jobs: Dict[str, List[Job]] = {}
    # a list's skips count only for the tasks asked for ("tts" lists feed tts_cross_sentence)
    asked = {"tts": "tts_cross_sentence" in cfg.tasks, "vc": "vc" in cfg.tasks}
    skipped = [row for row in lists["skipped"] if asked.get(row["list"], True)]
    if "tts_cross_sentence" in cfg.tasks:
        jobs["tts_cross_sentence"] = [Job(j["id"], j["text"], j["path"], j["prompt"], texts.get(j["prompt_id"], ""),
                                          speaker=j["speaker"]) for j in lists["tts"]]
    if "vc" in cfg.tasks:
        jobs["vc"] = [Job(j["id"], j["text"], j["path"], j["prompt"], texts.get(j["prompt_id"], ""), j["path"],
                          j["speaker"]) for j in lists["vc"]]
    if "tts" in cfg.tasks:
        # the recording of the same words is kept as the reference: the ground-truth row (no metric uses it)
        jobs["tts"] = [Job(r["id"], texts[r["id"]], r["path"], speaker=r["speaker"]) for r in chosen if texts[r["id"]]]
    if "tts_continuation" in cfg.tasks:
        jobs["tts_continuation"] = []
        for row in chosen:
            prefix = _write_prefix(row, cfg.prefix_seconds, out_dir / "prefixes") if texts[row["id"]] else None
            if prefix is None:
                skipped.append({"id": row["id"], "list": "tts_continuation",
                                "why": f"no transcript or shorter than {cfg.prefix_seconds + 1:g} s"})
                continue
            jobs["tts_continuation"].append(Job(row["id"], texts[row["id"]], row["path"], prefix, texts[row["id"]],
                                                speaker=row["speaker"]))
    return jobs, skipped


def write_jobs(jobs: Dict[str, List[Job]], skipped: List[dict], out_dir: Path) -> None:
    """The exact lists: ``<task>.jsonl`` per task and ``skipped.tsv``."""
    from utils.io import atomic_write_text

    for task, items in jobs.items():
        atomic_write_text(out_dir / f"{task}.jsonl", "".join(json.dumps(asdict(j), ensure_ascii=False) + "\n"
                                                             for j in items))
    rows = "".join(f"{s['id']}\t{s['list']}\t{s['why']}\n" for s in skipped)
    atomic_write_text(out_dir / "skipped.tsv", "id\tlist\twhy\n" + rows)
