"""Shared experiment plumbing: result writing, timing."""
