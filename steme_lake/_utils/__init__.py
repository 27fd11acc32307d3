"""Private helpers shared by every layer (no imports from upper layers)."""
