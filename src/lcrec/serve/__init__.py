"""Online inference: the KServe predictor, top-K cache and live re-index."""
