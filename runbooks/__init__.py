"""One runbook per alert, as Markdown: package data the API serves at ``/runbooks/{name}.md``."""
