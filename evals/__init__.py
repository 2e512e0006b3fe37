"""Evaluation step: offline faithfulness checking and its metrics (imports nothing heavy)."""
