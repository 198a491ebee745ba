"""Storage: where databases live and how connections to them are opened.

- `base`: the `Storage` interface, its errors, and the read-only / read-write connection openers.
- `local`: files on disk (`lambdasette serve`, and each Lambda container's copies).
- `litestream`: the real `litestream` binary: replica URLs, the writer's replicate daemon,
  readers' followers, background restores, fencing.
- `replicated`: databases that live in a Litestream replica (S3 or file://), copied locally
  on first use.
- `limits`: how many followers and how many bytes of copies a process may keep (from its
  memory and its data directory's size).
- `budget`: how long the current request may wait for a restore.
- `drill`: the restore drill (restore each database into scratch space, check it).
- `publish`: `db push|pull|list` — files into and out of a replica.
- `datadir`: what is never a database (the token store, however it is linked) and the lock
  that keeps one process per data directory.
- `versions`: change detection, so figures that depend only on data can be cached.

May import: the base modules (errors, settings, metadata, tilde, args, names, celljson). Nothing above.
"""
