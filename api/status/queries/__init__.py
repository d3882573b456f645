"""SQL of the status page."""
