"""A loopback emulator of HubSpot's CRM v3/v4 API (contacts, deals, tasks, properties, owners).

Serve it with :class:`crmsync.sandbox.server.SandboxServer`; the contract it follows is
``CRM_WIRE_CONTRACT.md`` §3.
"""

from crmsync.sandbox.hubspot.emulator import DEFAULT_TOKEN, HubSpotEmulator
from crmsync.sandbox.hubspot.ratelimit import RateLimits

__all__ = ["DEFAULT_TOKEN", "HubSpotEmulator", "RateLimits"]
