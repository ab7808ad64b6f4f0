"""alprbox file exporter."""
