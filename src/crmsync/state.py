"""The state store: run ledger, cursors, write journal and rejected records (SQLAlchemy)."""
