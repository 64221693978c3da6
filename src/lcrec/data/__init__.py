"""Data layer: one schema for every source, readers per source, text cleaning."""
