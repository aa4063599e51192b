"""Public corpus download locations and a small resumable-safe fetch + extract (used only when asked).

Offline, the preparers take a local path; :func:`fetch_and_extract` is only called with ``download=True`` and
fails with a one-line message naming the URL when it cannot be reached.
"""

from __future__ import annotations

import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from utils.io import atomic_path

CORPUS_URLS = {
    "ljspeech": ["https://data.keithito.com/data/speech/LJSpeech-1.1.tar.bz2"],
    "vctk": ["https://datashare.ed.ac.uk/bitstream/handle/10283/3443/VCTK-Corpus-0.92.zip"],
    "libritts": [
        f"https://www.openslr.org/resources/60/{subset}.tar.gz"
        for subset in ("train-clean-100", "dev-clean", "test-clean")
    ],
}


class DownloadError(OSError):
    """A download or extraction failed; the message names the URL or archive."""


def fetch_and_extract(url: str, dest: Path, timeout: float = 30.0) -> Path:
    """Download ``url`` into ``dest`` (temporary file, then rename) and unpack it there; returns ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    name = url.rstrip("/").split("/")[-1]
    archive = dest / name
    if not archive.is_file():
        try:
            with atomic_path(archive) as tmp, open(tmp, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                shutil.copyfileobj(response, out, length=1 << 20)
        except (urllib.error.URLError, OSError) as err:
            raise DownloadError(
                f"could not download {url} ({err}); without network, download it elsewhere and pass its local path"
            ) from err
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(dest)
        else:
            with tarfile.open(archive) as tf:
                tf.extractall(dest, filter="data")
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as err:
        raise DownloadError(f"could not extract {archive}: {err}") from err
    return dest
