"""SQL of the simulator, one module per concern."""
