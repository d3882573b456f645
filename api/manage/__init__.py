"""Users and API keys managed from the API's own pages: every change confirmed, audited and
tied to the person who made it."""
