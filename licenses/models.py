"""Licence tables (filled in by the licence registry issue)."""
