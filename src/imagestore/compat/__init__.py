"""Adapters for the services that already speak another store API (Glance's glance_store)."""
