"""Feast feature store: item text and codes, user history, the per-user top-K cache."""
