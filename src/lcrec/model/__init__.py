"""Backbone language models (loading, caching) and device selection."""
