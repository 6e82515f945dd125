"""Operators of the Azerion provider."""
