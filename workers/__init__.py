"""Thin Celery tasks and the per-session worker runtime."""
