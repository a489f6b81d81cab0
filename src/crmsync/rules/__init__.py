"""The rules engine: load, validate, compile, evaluate and explain JSON rule sets (pure)."""
