"""HTTP, and only HTTP: the app (app.py) in front of the protocol API (api/, bare ASGI)
and the pages (pages/, Starlette). web talks to core and runtime, never to store."""
