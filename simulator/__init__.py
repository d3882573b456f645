"""The traffic simulator: deterministic history, live concurrent writers, injected anomalies."""
