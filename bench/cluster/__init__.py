"""The Ray backend: the driver and what runs on a node."""
