"""The public status page: customer-facing components and public incident notices."""
