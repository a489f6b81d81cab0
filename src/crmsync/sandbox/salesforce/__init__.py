"""Salesforce REST / Tooling / Bulk 2.0 API emulator for the sandbox CRM.

Entry point: :class:`SalesforceEmulator`, served by :class:`crmsync.sandbox.server.SandboxServer`.
"""

from crmsync.sandbox.salesforce.emulator import SalesforceEmulator, SandboxConfig

__all__ = ["SalesforceEmulator", "SandboxConfig"]
