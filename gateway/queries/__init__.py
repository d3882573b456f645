"""The gateway's SQL, one module per concern."""
