"""Batch executions: Spring-Batch-compatible execution records, a singleton guard and abandon.

A capability platform, like http.py and owned.py: item sync (and later schedules) build on it.
"""
