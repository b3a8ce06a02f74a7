"""Reusable helpers for tests and benchmarks: a throwaway PostgreSQL cluster, a live server."""
