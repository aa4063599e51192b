"""VITS (Kim et al., 2021) baseline, checkpoint-compatible with jaywalnut310/vits."""
