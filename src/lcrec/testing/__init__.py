"""Fixtures and reference code for tests and benchmarks, never used by a pipeline step: a tiny but complete
serving folder (:mod:`lcrec.testing.tiny_serving`) and the Hugging Face ``generate`` reference decoder the trie
beam search is checked against (:mod:`lcrec.testing.hf_generate`)."""
