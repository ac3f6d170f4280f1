"""Fixtures for the strategy tests: the shipped tiny model (``mmcot/models/checkpoints/tiny``, loaded once per
session) for the end-to-end tests."""

import pytest


@pytest.fixture(scope="session")
def tiny():
    """The shipped tiny model through the real LocalBackend (the one ``mmcot solve --model tiny`` uses)."""
    from mmcot.reasoning.solve import get_backend

    return get_backend("tiny")
