"""Scheduled imports: definitions, fetching pages of records, mapping them to rows, batches
through the writer (locally or by invoking the write function), and run records.

May import: base modules, `storage`, `query`, `writes`. Never `web` or `endpoints`.
"""
