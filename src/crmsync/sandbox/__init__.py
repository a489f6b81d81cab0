"""Loopback emulators of the Salesforce REST and HubSpot CRM v3 APIs."""
