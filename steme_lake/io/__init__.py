"""Importers: the JSON-lines event format and the public data sets."""
