"""The HTTP side of every function: one wrapper, the answers, and reading a bounded body.

`wrapper` turns a function's `handle(event)` into a functions-framework ASGI function;
`responses` are the answers (JSON, errors through the one status table, CloudEvent replies);
`bodies` reads a request body within the size limit and keeps the connection usable;
`connections` bounds each connection's head (size, time) and what is drained of a body already
answered, for the functions and the local broker's ingress alike.
"""
