"""lambdasette: a Datasette-compatible JSON API for SQLite, serverless on AWS."""

__version__ = "0.1.0"
