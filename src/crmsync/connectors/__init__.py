"""Connectors: one small protocol, one implementation per CRM."""
