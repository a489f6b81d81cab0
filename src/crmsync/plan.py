"""Turn a decision and the current CRM values into the minimal list of changes (pure)."""
