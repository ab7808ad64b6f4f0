"""GateCam camera plugin for alprbox (an example vendor package)."""
