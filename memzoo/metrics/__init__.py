"""Metrics and model-free baselines shared by tasks, applications and training."""
