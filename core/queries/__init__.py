"""SQL of the ground floor's mechanisms (the commit horizon, the audit log)."""
