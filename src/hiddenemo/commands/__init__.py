"""Subcommands of `hiddenemo`, one module each; keep their top-level imports light."""
