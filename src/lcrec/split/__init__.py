"""Train/valid/test sequences: k-core filtering and chronological leave-one-out."""
