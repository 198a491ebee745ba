"""Lambda entry points: the app configured from a function's environment, wrapped for each
event source it receives (API Gateway through Mangum; direct task invocations).

May import anything in the package; nothing imports it.
"""
