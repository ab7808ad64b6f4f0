"""Data leaving the box: the outbox, payloads, evidence packages, transparency reports."""
