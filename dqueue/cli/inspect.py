"""``dqueue jobs …`` (to be written)."""
