"""Hooks of the Azerion provider."""
