"""Summaries and editions: the files editors write, their validation, and their storage."""
