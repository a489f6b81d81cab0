"""Run summaries and the funnel health report (HTML and JSON)."""
