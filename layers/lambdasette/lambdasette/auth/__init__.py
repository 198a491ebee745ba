"""Auth: who the caller is and what they may do.

- `tokens`: API tokens — their format, records, creation and verification, and the
  `TokenStore` interface with its local (SQLite file) implementation.
- `store_dynamodb`: the token store the AWS deployment uses.
- `sessions`: signed-in browsers - a session acts as the token it was started with.
- `actions`: Datasette's permission actions, abbreviations and token restrictions (`_r`).
- `permissions`: the permissions file (policy) and the one `allowed()` decision.
- `authorizer`: the SQLite authorizer that keeps a caller's SQL away from what it may not see.
- `write_sql`: what a caller's write SQL does (from SQLite's authorizer) and what that requires.

May import: the base modules (errors, settings, metadata, tilde, args, names, celljson). Nothing above.
"""
