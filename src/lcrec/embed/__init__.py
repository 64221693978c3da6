"""Item embeddings: pluggable text encoders (``registry``), the bundled MiniLM (``minilm``), mean-pooled
causal-LM hidden states (``causal_lm``) and the step that writes ``item_emb.npy`` (``embed``)."""
