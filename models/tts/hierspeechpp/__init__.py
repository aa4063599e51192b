"""HierSpeech++ (arXiv 2311.12454): hierarchical variational synthesizer, official-checkpoint compatible.

model.py (synthesizer), encoders.py, generator.py, config.py (schema + official config conversion),
checkpoint.py (official .pth I/O), inference.py (voice conversion API/CLI); training: training.py, losses.py,
trainer.py (see TRAINING.md).
"""
