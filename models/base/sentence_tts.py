"""The one per-text loop of every TTS family: text -> sentences -> one waveform per sentence -> joined.

A family subclasses :class:`SentenceTTS` and implements only :meth:`SentenceTTS.synthesize_piece` (one sentence,
at most ``max_sentence_chars`` characters, in a prepared voice); optionally :meth:`SentenceTTS.voice` (prompt /
prompt transcript / named speaker -> whatever the family needs per voice, computed once per distinct voice of a
call) and :meth:`SentenceTTS.finish` (the joined waveform -> the output: resampling, level). The base does the
rest the same way for every family:

* inputs: ``prompts`` / ``prompt_texts`` / ``speakers`` are checked against :attr:`capabilities` and aligned
  with ``texts`` (one for all, or one per text);
* splitting: :func:`models.base.text_split.split_sentences` with ``settings.max_sentence_chars`` (a text
  within that bound is spoken whole unless the family sets ``split_every_sentence``); a piece the
  family's front end cannot read (:class:`processors.text.frontend.TextError`) is skipped with a warning when
  others remain, a text with no speakable piece raises ``TextError`` naming it;
* joining: ``settings.pause_seconds`` of silence between pieces, at :attr:`piece_rate`;
* seeds: text ``k`` of a call with seed ``s`` uses ``item_seed(s, k) = s + 1000 k`` and its piece ``i`` draws
  from ``item_seed(s, k) + i``, both through a ``torch.Generator`` handed to the family and through the global
  torch RNG (a private state swapped in per step, so the caller's RNG state is untouched and interleaved
  streams draw what each draws alone). Item ``k`` of a call is therefore the one-item
  call with ``seed=item_seed(s, k)`` (what the batch runners rely on), and texts of up to 1000 pieces never
  share a seed.

:meth:`SentenceTTS.synthesize_stream` yields one text's chunks in order (for streaming servers; joined they
equal the one-shot result); :meth:`synthesize` is the task API of :class:`models.base.tasks.TextToSpeech`.
"""

from __future__ import annotations

import abc
import logging
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from models.base.infer_settings import InferSettings
from models.base.streaming import PrivateRandom
from models.base.tasks import Audio, AudioInput, TextToSpeech, per_text
from models.base.text_split import split_sentences
from models.base.waveforms import progress
from processors.text.speakable import check_speakable

log = logging.getLogger(__name__)

PIECE_SEEDS = 1000  # seed stride between the texts of one call (pieces of one text take the seeds in between)


@dataclass
class SentenceSettings(InferSettings):
    """The splitting settings every sentence-wise TTS pipeline has (inherited by its settings dataclass; checked
    by the shared vocabulary, :mod:`models.base.infer_settings`)."""

    max_sentence_chars: int = 300  # longer texts are spoken sentence by sentence (bounded memory)
    pause_seconds: float = 0.3  # silence between those sentences
    # characters the voice cannot speak (emoji, letters of other scripts): False fails the item naming them,
    # True leaves them out with a warning naming them (processors/text/speakable.py)
    drop_unspeakable: bool = False


@dataclass
class Voice:
    """One voice of a call, as the caller gave it (the family's :meth:`SentenceTTS.voice` turns it into its own)."""

    prompt: Optional[AudioInput] = None
    prompt_text: Optional[str] = None
    speaker: Union[int, str, None] = None


class SentenceTTS(TextToSpeech):
    """A TTS pipeline that speaks each text sentence by sentence (see the module doc)."""

    settings: SentenceSettings
    # split texts that fit in max_sentence_chars too (True), or speak them whole as the official code does
    split_every_sentence = False
    # the scripts (Unicode name prefixes) the voice's language is written in, and the language's name
    text_scripts: Tuple[str, ...] = ("LATIN",)
    text_language = "English"

    # ------------------------------------------------------------------ what a family implements
    @abc.abstractmethod
    def synthesize_piece(self, text: str, voice: Any, generator: torch.Generator) -> np.ndarray:
        """One sentence -> float32 ``(T,)`` at :attr:`piece_rate`. Random draws come from ``generator`` or from the
        global torch RNG (both seeded for this piece); unreadable text raises ``TextError``."""

    def voice(self, given: Voice) -> Any:
        """The family's form of a voice (computed once per distinct voice of a call); default: the speaker."""
        return given.speaker

    def finish(self, waveform: np.ndarray, voice: Any) -> np.ndarray:
        """The joined pieces at :attr:`piece_rate` -> the output at :attr:`sample_rate` (default: as is)."""
        return waveform

    @property
    def piece_rate(self) -> int:
        """The rate of :meth:`synthesize_piece`'s output (before :meth:`finish`)."""
        return self.sample_rate

    # ------------------------------------------------------------------ the loop
    def item_seed(self, seed: int, index: int) -> int:
        return seed + PIECE_SEEDS * index

    def voices(self, texts: Sequence[str], prompts: Optional[Sequence[AudioInput]] = None,
               prompt_texts: Optional[Sequence[str]] = None,
               speakers: Optional[Sequence[Union[int, str]]] = None) -> List[Voice]:  # fmt: skip
        """The inputs checked against :attr:`capabilities` and aligned with ``texts``: one :class:`Voice` each."""
        caps, name = self.capabilities, self.display_name
        if prompts and not caps.audio_prompt:
            raise ValueError(f"{name} speaks with its own voice{'s' if caps.speakers else ''} and takes no audio "
                             f"prompt" + (f": give one of its speakers ({', '.join(caps.speakers[:10])})"
                                         if caps.speakers else ""))
        if prompt_texts and not caps.prompt_text:
            raise ValueError(f"{name} takes no prompt transcript (prompt_text)")
        if speakers and any(s is not None for s in speakers) and caps.audio_prompt and not caps.speakers:
            raise ValueError(f"{name} is zero-shot: it takes a voice prompt, not named speakers")
        if caps.audio_prompt and not caps.speakers and not prompts:
            raise ValueError(f"{name} is zero-shot: it needs a voice prompt (one for all texts or one per text)")
        if caps.prompt_text and prompts and not prompt_texts:
            raise ValueError(f"{name} needs the transcript of each voice prompt (prompt_texts)")
        return [Voice(p, t, s) for p, t, s in zip(per_text(prompts, texts, "prompts"),
                                                  per_text(prompt_texts, texts, "prompt transcripts"),
                                                  per_text(speakers, texts, "speakers"))]

    def synthesize(self, texts: Sequence[str], prompts: Optional[Sequence[AudioInput]] = None,
                   prompt_texts: Optional[Sequence[str]] = None, speakers: Optional[Sequence[Union[int, str]]] = None,
                   seed: Optional[int] = None) -> List[Audio]:  # fmt: skip
        seed = self.seed_or_default(seed)
        prepared: Dict[Tuple[int, Optional[str], Any], Any] = {}  # one voice computation per distinct voice
        out = []
        for k, (text, given) in enumerate(zip(texts, self.voices(texts, prompts, prompt_texts, speakers))):
            key = (id(given.prompt), given.prompt_text, given.speaker)
            if key not in prepared:
                prepared[key] = self.voice(given)
            out.append(self.synthesize_text(text, prepared[key], self.item_seed(seed, k)))
        return out

    def text_pieces(self, text: str) -> List[str]:
        """The sentences of ``text`` (``TextError`` when it has none to speak)."""
        from processors.text.frontend import TextError

        if not isinstance(text, str):
            raise TextError(f"text must be a string, got {type(text).__name__}")
        if not text.strip():
            raise TextError("the text is empty: there is nothing to speak" if not text else
                            f"the text holds only white space ({len(text)} characters): there is nothing to speak")
        speakable = check_speakable(text, self.text_scripts, self.settings.drop_unspeakable, self.text_language)
        if not speakable.strip():
            raise TextError(f"nothing is left to speak once the characters the {self.text_language} voice cannot "
                            f"speak are left out: {text[:80]!r}")
        limit = self.settings.max_sentence_chars
        whole = not self.split_every_sentence and len(speakable) <= limit
        pieces = [speakable] if whole else split_sentences(speakable, limit)
        if not pieces:
            raise TextError(f"the {self.text_language} front end cannot read this text: {speakable[:80]!r} (no "
                            f"words in it)")
        return pieces

    def piece_chunks(self, text: str, voice: Any, generator: torch.Generator,
                     streaming: bool) -> Iterator[np.ndarray]:  # fmt: skip
        """One piece as one or more chunks (default: :meth:`synthesize_piece` whole). A family whose decoder can
        work in windows overrides this for ``streaming``; joined, the chunks must equal the one-shot piece."""
        yield self.synthesize_piece(text, voice, generator)

    def text_chunks(self, text: str, voice: Any, seed: int, streaming: bool = False) -> Iterator[np.ndarray]:
        """The audio of ``text`` at :attr:`piece_rate` as chunks in order, each pause its own chunk (no
        :meth:`finish`). Piece ``i`` draws from ``seed + i`` through its own generator state
        (:class:`models.base.streaming.PrivateRandom`): streams advanced in turns draw what each draws alone, and
        the caller's torch RNG is untouched."""
        from processors.text.frontend import TextError

        pieces = self.text_pieces(text)
        pause = np.zeros(int(round(self.settings.pause_seconds * self.piece_rate)), dtype=np.float32)
        spoken = 0
        for i, piece in progress(enumerate(pieces), len(pieces), "sentences"):
            rng = PrivateRandom(seed + i)
            chunks = self.piece_chunks(piece, voice, torch.Generator().manual_seed(seed + i), streaming)
            first = True
            while True:
                try:
                    with rng.active():
                        chunk = next(chunks, None)
                except TextError as err:  # raised before the piece's first chunk
                    if len(pieces) == 1:
                        raise
                    log.warning("skipping text piece %r: %s", piece, err)
                    break
                if chunk is None:
                    break
                if first and spoken:
                    yield pause
                first = False
                yield np.asarray(chunk, dtype=np.float32).reshape(-1)
            spoken += not first
        if not spoken:
            raise TextError(f"the {self.text_language} front end cannot read this text: {text[:80]!r}")

    def synthesize_text(self, text: str, voice: Any, seed: int) -> Audio:
        """One text in a prepared voice: its pieces joined with pauses, then :meth:`finish`."""
        return Audio(self.finish(np.concatenate(list(self.text_chunks(text, voice, seed))), voice), self.sample_rate)

    def synthesize_stream(self, text: str, prompt: Optional[AudioInput] = None, prompt_text: Optional[str] = None,
                          speaker: Union[int, str, None] = None, seed: Optional[int] = None) -> Iterator[Audio]:
        """Sentence by sentence (pauses as their own chunks; windows where :meth:`piece_chunks` has them); joined,
        equal to ``synthesize([text], ...)[0]``. A family whose :meth:`finish` needs the whole text (resampling,
        level normalisation) yields that one result."""
        given = self.voices([text], None if prompt is None else [prompt], None if prompt_text is None else [prompt_text],
                            None if speaker is None else [speaker])[0]
        voice, seed = self.voice(given), self.item_seed(self.seed_or_default(seed), 0)
        if type(self).finish is not SentenceTTS.finish:
            yield self.synthesize_text(text, voice, seed)
            return
        for chunk in self.text_chunks(text, voice, seed, streaming=True):
            yield Audio(chunk, self.sample_rate)
