"""alprbox evidence package exporter."""
