"""The CLI tests reuse the sync tests' sandbox fixture (a seeded CRM and a settings file)."""

from sync.conftest import crm  # noqa: F401 - a fixture, registered by being imported here
