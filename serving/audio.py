"""Audio in and out of the server, in memory only (no upload touches the disk, no request names a path).

Uploads: any file libsndfile reads (wav, flac, ogg, mp3, ...), limited in bytes before decoding and in
seconds after; several channels are averaged to mono. Responses: ``wav`` (16-bit PCM), ``flac``, ``pcm``
(raw 16-bit little-endian mono, rate in the ``X-Sample-Rate`` header) and the other containers libsndfile
writes (``mp3``, ``ogg``, ``opus``, ``aiff``). ``wav`` and ``pcm`` can be streamed.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import re
import struct
from typing import Dict, Optional, Tuple

import numpy as np
import soundfile as sf

from models.base.tasks import Audio
from processors.audio import resample
from serving.errors import ApiError

# response_format -> (libsndfile format, subtype, media type); "pcm" is headerless and written here
FORMATS: Dict[str, Tuple[str, Optional[str], str]] = {
    "wav": ("WAV", "PCM_16", "audio/wav"),
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "mp3": ("MP3", "MPEG_LAYER_III", "audio/mpeg"),
    "ogg": ("OGG", "VORBIS", "audio/ogg"),
    "opus": ("OGG", "OPUS", "audio/ogg"),
    "aiff": ("AIFF", "PCM_16", "audio/aiff"),
    "pcm": ("RAW", "PCM_16", "audio/pcm"),
}
STREAMABLE = ("wav", "pcm")
# the rates a codec takes; audio at another rate (e.g. a fine-tuned voice playing 1.26x faster than 22050 Hz)
# is resampled to the lowest of them at or above it
CODEC_RATES: Dict[str, Tuple[int, ...]] = {
    "opus": (8000, 12000, 16000, 24000, 48000),
    "mp3": (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
}


@functools.lru_cache(maxsize=None)
def available_formats() -> Tuple[str, ...]:
    """The response formats this libsndfile build writes (asked once: libsndfile lists its subtypes by probing
    each one, ~4 ms a request on the event loop when every request asked again)."""
    have = sf.available_formats()
    return tuple(name for name, (fmt, subtype, _) in FORMATS.items()
                 if fmt in have and (subtype is None or subtype in sf.available_subtypes(fmt)))


def check_format(name: str, param: str = "response_format") -> str:
    if name not in available_formats():
        raise ApiError(422, f"{param} {name!r} is not one of {', '.join(available_formats())}", param)
    return name


def pcm16(waveform: np.ndarray) -> bytes:
    """float32 (T,) in [-1, 1] -> 16-bit little-endian PCM (clipped)."""
    return (np.clip(waveform, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


def codec_rate(response_format: str, sample_rate: int) -> int:
    """The rate ``response_format`` is written at for audio at ``sample_rate`` (:data:`CODEC_RATES`)."""
    rates = CODEC_RATES.get(response_format)
    if not rates or sample_rate in rates:
        return sample_rate
    return min((r for r in rates if r >= sample_rate), default=max(rates))


def encode(audio: Audio, response_format: str) -> Tuple[bytes, str, int]:
    """Audio -> (file bytes, media type, the rate written: :func:`codec_rate`)."""
    fmt, subtype, media = FORMATS[check_format(response_format)]
    if response_format == "pcm":
        return pcm16(audio.waveform), media, audio.sample_rate
    rate, waveform = codec_rate(response_format, audio.sample_rate), audio.waveform
    if rate != audio.sample_rate:
        waveform = resample(waveform, audio.sample_rate, rate)
    buffer = io.BytesIO()
    sf.write(buffer, np.clip(waveform, -1.0, 1.0), rate, format=fmt, subtype=subtype)
    return buffer.getvalue(), media, rate


def streaming_wav_header(sample_rate: int) -> bytes:
    """A 16-bit mono WAV header whose sizes say "unknown length" (0xFFFFFFFF), as streamed WAV players expect."""
    unknown = 0xFFFFFFFF
    return (b"RIFF" + struct.pack("<I", unknown) + b"WAVE" + b"fmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16) + b"data" + struct.pack("<I", unknown))


def decode_error(err: Exception) -> str:
    """libsndfile's reason alone: its message names the in-memory buffer (``<_io.BytesIO object at 0x...>``),
    which means nothing to the client."""
    reason = getattr(err, "error_string", None) or re.sub(r"<[^<>]* object at 0x[0-9a-fA-F]+>:?\s*", "", str(err))
    return " ".join(reason.split()).rstrip(".") or type(err).__name__


def decode_upload(data: bytes, max_bytes: int, max_seconds: float, param: str, filename: str = "") -> Audio:
    """Uploaded file bytes -> mono :class:`Audio`, or a 400/413 naming ``param`` (and the file's name)."""
    what = f"{param} ({filename!r})" if filename else param
    if len(data) == 0:
        raise ApiError(400, f"{what}: the uploaded audio is empty (0 bytes)", param)
    if len(data) > max_bytes:
        raise ApiError(413, f"{what}: {len(data)} bytes is over the limit of {max_bytes} bytes", param)
    try:
        with sf.SoundFile(io.BytesIO(data)) as fh:
            seconds = fh.frames / fh.samplerate
            if seconds > max_seconds:
                raise ApiError(413, f"{what}: {seconds:.1f} s of audio is over the limit of {max_seconds:g} s",
                               param)
            wav = fh.read(dtype="float32", always_2d=True)
            rate = fh.samplerate
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise ApiError(400, f"{what}: not a readable audio file ({decode_error(err)})", param) from err
    if wav.shape[0] == 0:
        raise ApiError(400, f"{what}: the audio holds no samples (zero length)", param)
    if not np.isfinite(wav).all():
        raise ApiError(400, f"{what}: the audio holds non-finite samples", param)
    return Audio(wav.mean(axis=1), rate)


def decode_base64_audio(text: str, max_bytes: int, max_seconds: float, param: str) -> Audio:
    """A base64 string (optionally a ``data:audio/...;base64,`` URL) -> :class:`Audio`."""
    if "," in text[:100] and text.startswith("data:"):
        text = text.split(",", 1)[1]
    if len(text) > max_bytes * 4 // 3 + 4:
        raise ApiError(413, f"{param}: the base64 audio is over the limit of {max_bytes} bytes", param)
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise ApiError(400, f"{param}: not valid base64 ({err})", param) from err
    return decode_upload(data, max_bytes, max_seconds, param)
