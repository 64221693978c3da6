"""Offline evaluation: ranking metrics over decoded recommendations."""
