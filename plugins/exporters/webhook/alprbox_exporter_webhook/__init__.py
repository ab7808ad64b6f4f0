"""alprbox webhook exporter."""
