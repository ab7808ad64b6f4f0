"""Prometheus metrics, one registry per appliance (never the global one, so tests stay isolated)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.frames = Counter("alprbox_frames", "Frames received", ["camera"], registry=r)
        self.frames_dropped = Counter(
            "alprbox_frames_dropped", "Frames dropped by a full queue", ["camera"], registry=r
        )
        self.frames_gated = Counter(
            "alprbox_frames_gated", "Frames skipped by the motion gate", ["camera"], registry=r
        )
        self.frames_event_skipped = Counter(
            "alprbox_frames_event_skipped",
            "Frames skipped because the camera's own events said nothing moves",
            ["camera"],
            registry=r,
        )
        self.detector_runs = Counter(
            "alprbox_detector_runs", "Frames run through the recognizer", ["camera"], registry=r
        )
        self.frame_errors = Counter(
            "alprbox_frame_errors",
            "Frames the recognizer could not process",
            ["camera"],
            registry=r,
        )
        self.reads = Counter("alprbox_reads", "Plate reads stored", ["camera"], registry=r)
        self.alerts = Counter(
            "alprbox_alerts", "Hot-list hits raised as alerts", ["list"], registry=r
        )
        self.store_errors = Counter(
            "alprbox_store_errors", "Reads the store failed to commit", registry=r
        )
        # Retention (issue 5): what was purged, when, and whether the last run failed.
        self.retention_purged = Counter(
            "alprbox_retention_purged", "Rows purged by retention", ["class"], registry=r
        )
        self.retention_last_run = Gauge(
            "alprbox_retention_last_run_timestamp_seconds", "End of the last retention run",
            registry=r,
        )
        self.retention_failing = Gauge(
            "alprbox_retention_failing", "1 while the last retention run failed", registry=r
        )
        self.recognize_seconds = Histogram(
            "alprbox_recognize_seconds",
            "Wall time of one recognizer call",
            ["camera"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2),
            registry=r,
        )
        self.stage_cpu = Counter(
            "alprbox_recognizer_cpu_seconds",
            "CPU seconds per recognizer stage",
            ["stage"],
            registry=r,
        )
        self.camera_up = Gauge(
            "alprbox_camera_up", "1 while the camera delivers frames", ["camera"], registry=r
        )
        self.camera_last_frame = Gauge(
            "alprbox_camera_last_frame_timestamp_seconds",
            "Time of the last frame",
            ["camera"],
            registry=r,
        )
        self.camera_frame_age = Gauge(
            "alprbox_camera_last_frame_age_seconds",
            "Seconds since the camera's last frame, at scrape time (NaN before the first)",
            ["camera"],
            registry=r,
        )
        self.plugins_failed = Gauge(
            "alprbox_plugins_failed", "Plugins that failed to load", registry=r
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
