"""Helpers for robosteer's own test suite (and for users testing their extensions)."""
