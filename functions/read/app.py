"""Read function: every GET and HEAD. Set up once per container, at import."""

from lambdasette.handlers.lambda_app import handler_for

handler = handler_for("read")
