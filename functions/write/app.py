"""Write function: every POST (the write API and the token API). Deployed with reserved
concurrency 1, so there is one writer per deployment. Set up once per container, at import."""

from lambdasette.handlers.lambda_app import handler_for

handler = handler_for("write")
