"""Bundled offline demo API.

A small local HTTP server that stands in for real REST APIs, so examples,
tests and demos work without network access. See ``demo.api.DemoAPI``.
"""
