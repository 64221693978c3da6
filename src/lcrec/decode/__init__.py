"""Generative retrieval decoding: the code trie and trie-constrained beam search."""
