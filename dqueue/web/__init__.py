"""``dqueue web``: the HTTP API (sync, abandon, executions, webhook, health)."""
