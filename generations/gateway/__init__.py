"""The studio as a gateway: an OpenAI-compatible `/v1/videos` API, personal API tokens and their page.

Its own Django app (label `gateway`) inside the generations package, so its tables and migrations live
apart from the generations app's. Every video made through the API is an ordinary Generation, started
with `lifecycle.start`: routed, budgeted, charged and shown in the gallery like any other.
"""
