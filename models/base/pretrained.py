"""Which pretrained weights Echelon can use, installed here or not, and how to get and load each (``echelon-models``).

Whoever loads weights lists them, next to the code that finds them, with a registered lister that only looks
(packages present, files on disk), never loads::

    # models/sr/speechsr/pretrained_weights.py, registered as ("pretrained", "speechsr")
    def bundled_releases() -> List[Pretrained]:
        return [Pretrained("SpeechSR 16 -> 48 kHz", "speech super-resolution", path.is_file(), str(path),
                           "echelon-infer --model_type speechsr --inputs a.wav --target_rate 48000 --output_dir out")]

:func:`catalogue` calls every lister (one that fails is listed with its error, the others go on);
:func:`format_catalogue` prints the installed entries first, then the others with where to get them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List, Sequence

from utils.registry import get, names


@dataclass(frozen=True)
class Pretrained:
    """One set of weights: ``location`` is where it is when ``installed``, else where to get it; ``usage`` is the
    Echelon command that loads it."""

    name: str
    purpose: str
    installed: bool
    location: str
    usage: str

    def as_dict(self) -> Dict[str, object]:
        return asdict(self)


def in_hub_cache(repo_id: str) -> bool:
    """Whether the Hugging Face cache holds ``repo_id`` (its ``config.json``); looks on disk only, never online."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def catalogue() -> List[Pretrained]:
    """Every registered lister's entries, in registry order."""
    entries: List[Pretrained] = []
    for lister in names("pretrained"):
        try:
            entries += list(get("pretrained", lister)())
        except Exception as err:  # noqa: BLE001 - a lister that cannot run (a dependency missing) is named
            entries.append(Pretrained(lister, "unknown", False, f"cannot be listed: {type(err).__name__}: {err}", ""))
    return entries


def format_catalogue(entries: Sequence[Pretrained]) -> str:
    """The installed entries, then the others with where to get them."""
    here = [e for e in entries if e.installed]
    elsewhere = [e for e in entries if not e.installed]
    lines = [f"Installed ({len(here)}):"] + [line for e in here for line in _entry_lines(e, "at")]
    if elsewhere:
        lines += ["", f"Not installed ({len(elsewhere)}), and where to get them:"]
        lines += [line for e in elsewhere for line in _entry_lines(e, "get")]
    return "\n".join(lines)


def _entry_lines(entry: Pretrained, where: str) -> List[str]:
    lines = [f"  {entry.name} [{entry.purpose}]", f"      {where}: {entry.location}"]
    return lines + ([f"      use: {entry.usage}"] if entry.usage else [])
