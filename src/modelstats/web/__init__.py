"""The ASGI/WSGI glue every function handler uses."""
