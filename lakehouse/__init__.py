"""Shared pieces of the Amazon products lakehouse: settings, record schemas, topic names."""
