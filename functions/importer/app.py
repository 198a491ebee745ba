"""Import function (filled in by the import work)."""
