"""Glance integration: the glance_store driver, the compat module, and a real Glance over REST."""
