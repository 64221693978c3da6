"""Alignment tuning: collators, the Trainer set-up and the `lcrec train` step."""
