"""echelon-finetune: a pretrained voice adapted to someone's recordings, measured (above models/ and evaluation/)."""
