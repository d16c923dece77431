"""Assignment packages: one per assignment, each holding everything that knows its assignment."""
