"""Sales ops' workbench: what a rule change would do, before it ships (issue 11).

Read-only tools over a contact population (a JSON Lines file, or a full read of the configured
CRM): ``crmsync rules diff`` compares two rule files, ``crmsync export`` writes the population's
canonical facts as the JSON Lines every offline command reads, ``crmsync backtest`` judges a
rule file against deals that already closed. Nothing here writes to a CRM, journals, moves a
cursor or records a run.

Kept free of imports: each module pulls in only what it needs, so the ``rules`` commands start
fast.
"""
