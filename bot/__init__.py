"""Closer's library: catalog, leads, search and the console. Actions in `actions/` call into it."""
