"""Synthetic data: replicas of published dataset layouts and rendered faces, for tests and demos."""
