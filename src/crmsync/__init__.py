"""crmsync: a rules-engine plugin for the CRMs sales teams already live in.

crmsync reads contacts from Salesforce or HubSpot, decides each one's funnel status, miss type,
score and reason with a declarative JSON rule set, and writes the results back as CRM fields and
follow-up tasks.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
