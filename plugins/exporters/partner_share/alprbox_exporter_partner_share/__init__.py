"""alprbox regional partner share exporter."""
