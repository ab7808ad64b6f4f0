"""Hot lists inside the host: the matcher index (and, later, refresh and storage)."""
