"""Receiving completion callbacks at /webhooks/<backend id>/: verify, remember, poll the job at once."""
