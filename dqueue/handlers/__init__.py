"""Handlers for external systems: one package per system, each with its own client."""
