"""``adaline-kit similarity``: which students wrote alike code in the stubs (informs, never scores)."""
