"""SQL of incidents, their escalation and the one-click actions, one module per concern."""
