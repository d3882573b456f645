"""Finance tickets: a list, a page, statuses, owners, and finance told when one opens."""
