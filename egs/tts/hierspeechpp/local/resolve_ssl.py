"""Decide which SSL model the recipe uses and record it in ``<exp_dir>/ssl/ssl.json`` (read by every stage).

* ``--ssl_model auto`` (default): ``facebook/mms-300m`` when its weights are in the local Hugging Face cache or
  the hub answers; otherwise a small RANDOMLY INITIALISED wav2vec 2.0, saved to ``<exp_dir>/ssl/random_wav2vec2``
  so that feature extraction, training and inference all see the same weights. The fallback is announced.
* ``--ssl_model random``: that random model on purpose.
* anything else (hub id or local directory): used as given; an unreachable one fails with the loader's message.

Prints one line ``model<TAB>layer<TAB>dim<TAB>random`` for the shell.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from utils.io import atomic_write_text, make_temp_dir, publish_dir

REAL_DEFAULT = "facebook/mms-300m"
RANDOM_SEED = 0
# Layer 7 as for MMS, with one more layer so the saved model keeps the stable-layer-norm layout of a full model.
RANDOM_LAYERS = 8


def real_model_reachable(model_id: str, timeout: float) -> tuple[bool, str]:
    """(True, why) when the weights are cached locally or the hub lists the model; never downloads weights."""
    from huggingface_hub import model_info, try_to_load_from_cache

    cached = try_to_load_from_cache(model_id, "config.json")
    if isinstance(cached, str):
        return True, f"found in the local Hugging Face cache ({Path(cached).parent})"
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return False, "not in the local Hugging Face cache and HF_HUB_OFFLINE is set"
    try:
        model_info(model_id, timeout=timeout)
    except Exception as err:  # noqa: BLE001 - any failure (DNS, proxy, HTTP) means "not reachable"
        return False, f"not in the local Hugging Face cache and the hub is not reachable ({type(err).__name__})"
    return True, "the Hugging Face hub is reachable (weights download on first use)"


def save_random_model(out_dir: Path) -> int:
    """Build the seeded random wav2vec 2.0 once and save it with ``save_pretrained``; returns its feature dim."""
    from processors.ssl import build_random_ssl

    if not (out_dir / "config.json").is_file():
        extractor = build_random_ssl(layer=RANDOM_LAYERS, num_layers=RANDOM_LAYERS, seed=RANDOM_SEED)
        tmp = make_temp_dir(out_dir.parent)
        try:
            extractor.model.save_pretrained(str(tmp))
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        publish_dir(tmp, out_dir)  # replaces a partial directory from an interrupted run
    return int(json.loads((out_dir / "config.json").read_text())["hidden_size"])


def model_dim(model: str) -> int:
    from transformers import AutoConfig

    return int(AutoConfig.from_pretrained(model).hidden_size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ssl_model", default="auto")
    parser.add_argument("--layer", type=int, default=7)
    parser.add_argument("--exp_dir", required=True, type=Path)
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args(argv)

    record_path = args.exp_dir / "ssl" / "ssl.json"
    record_path.parent.mkdir(parents=True, exist_ok=True)
    choice, why = args.ssl_model, "given with --ssl_model"
    if choice == "auto":
        ok, why = real_model_reachable(REAL_DEFAULT, args.timeout)
        choice = REAL_DEFAULT if ok else "random"
    use_random = choice == "random"
    try:
        if use_random:
            model = str((args.exp_dir / "ssl" / "random_wav2vec2").resolve())
            dim = save_random_model(Path(model))
        else:
            model = choice
            dim = model_dim(model)
    except OSError as err:
        print(f"resolve_ssl: cannot load SSL model {choice!r}: {err}", file=sys.stderr)
        return 2
    record = {"model": model, "layer": args.layer, "dim": dim, "random": use_random, "why": why}
    atomic_write_text(record_path, json.dumps(record, indent=2) + "\n")
    print(f"{model}\t{args.layer}\t{dim}\t{str(use_random).lower()}\t{why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
