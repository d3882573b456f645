"""Live lists: new and changed rows pushed to the pages that show them (SSE, or polling)."""
