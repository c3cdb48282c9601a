"""The store: the record schema, run files, the pytest-benchmark interchange, safe output paths."""
