"""Tiny randomly initialised transformers models saved to a folder, to test the loading/batching plumbing.

They produce garbage text and embeddings: tests check shapes, batching invariance and errors, not accuracy.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

_SPECIAL = ["<|endoftext|>", "<|startoftranscript|>", "<|transcribe|>", "<|translate|>", "<|notimestamps|>"]


def _byte_level_alphabet() -> list[str]:
    """The 256 single-character symbols of a byte-level BPE vocabulary (printable bytes map to themselves)."""
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    shifted = [chr(256 + i) for i in range(256 - len(printable))]
    return [chr(b) for b in printable] + shifted


def make_tiny_whisper(folder: Path) -> Path:
    from transformers import (WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration,
                              WhisperProcessor, WhisperTokenizer)

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(_byte_level_alphabet())}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = WhisperTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), unk_token=_SPECIAL[0],
                                 bos_token=_SPECIAL[0], eos_token=_SPECIAL[0])
    tokenizer.add_special_tokens({"additional_special_tokens": _SPECIAL})
    WhisperProcessor(WhisperFeatureExtractor(feature_size=80), tokenizer).save_pretrained(folder)
    ids = {name: tokenizer.convert_tokens_to_ids(name) for name in _SPECIAL}
    config = WhisperConfig(
        vocab_size=len(tokenizer), num_mel_bins=80, d_model=16, encoder_layers=1, decoder_layers=1,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        max_source_positions=1500, max_target_positions=12, decoder_start_token_id=ids["<|startoftranscript|>"],
        eos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"], bos_token_id=ids["<|endoftext|>"],
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config.begin_suppress_tokens = None  # the defaults name ids of the real 51k vocabulary
    model.generation_config.suppress_tokens = None
    model.generation_config.no_timestamps_token_id = ids["<|notimestamps|>"]
    model.save_pretrained(folder)
    return folder


def make_tiny_ctc(folder: Path) -> Path:
    from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor, Wav2Vec2ForCTC,
                              Wav2Vec2Processor)

    folder.mkdir(parents=True, exist_ok=True)
    letters = ["<pad>", "<unk>", "|"] + [chr(c) for c in range(ord("A"), ord("Z") + 1)] + ["'"]
    (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(letters)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), unk_token="<unk>", pad_token="<pad>",
                                     word_delimiter_token="|")
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                                         return_attention_mask=True)
    Wav2Vec2Processor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    config = Wav2Vec2Config(
        vocab_size=len(letters), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, feat_extract_norm="layer", do_stable_layer_norm=True, pad_token_id=0,
    )
    torch.manual_seed(0)
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    return folder


def make_tiny_wavlm_sv(folder: Path) -> Path:
    from transformers import Wav2Vec2FeatureExtractor, WavLMConfig, WavLMForXVector

    folder.mkdir(parents=True, exist_ok=True)
    Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                             return_attention_mask=True).save_pretrained(folder)
    config = WavLMConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
        conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        feat_extract_norm="layer", do_stable_layer_norm=True, tdnn_dim=(16, 16, 24), tdnn_kernel=(3, 3, 1),
        tdnn_dilation=(1, 2, 1), xvector_output_dim=12, num_buckets=32, max_bucket_distance=64,
    )
    torch.manual_seed(0)
    WavLMForXVector(config).save_pretrained(folder)
    return folder
