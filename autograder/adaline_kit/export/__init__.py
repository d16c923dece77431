"""``adaline-kit export-grades``: upload files for an LMS from a graded class folder."""
