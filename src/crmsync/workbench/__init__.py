"""Sales ops' workbench: see what a rule set does before it ships (issue 11)."""
