"""lcrec: LC-Rec (LLM-based generative recommendation) as a production pipeline."""

__version__ = "0.1.0"
