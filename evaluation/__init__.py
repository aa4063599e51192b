"""Objective evaluation of generated speech: WER/CER, speaker similarity, F0, spectral distances, reports.

Metrics are registered with ``@register("metric", name)`` (``wer``, ``sim``, ``f0``, ``mcd``, ``log_mel_l1``,
``mrstft``, ``dnsmos``, ``stoi``, ``pesq``); ``evaluation.runner.evaluate`` (CLI ``bins/evaluate.py``) runs them over systems and writes the report.  Every
definition and convention is in ``evaluation/README.md``.
"""
