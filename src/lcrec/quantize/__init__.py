"""Item tokenisation: an RQ-VAE over item embeddings and collision-free assignment of its codes.

``rqvae`` (the model), ``kmeans`` (codebook initialisation), ``sinkhorn`` (uniform semantic mapping),
``assign`` (collision-free codes that always terminate), ``incremental`` (new items against a frozen index),
``index_file`` (versioned, atomic index.json IO), ``report`` (code statistics and plot), ``quantize`` (the step).
"""
