"""Baselines scored on the same split and protocol as the LLM: popularity and SASRec (full softmax CE)."""
