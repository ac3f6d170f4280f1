"""Fixtures for the models tests: the random tiny model of ``tiny_folder`` (tests/conftest.py) behind a LocalBackend."""

import pytest


@pytest.fixture(scope="session")
def tiny_backend(tiny_folder):
    from mmcot.models.local import LocalBackend

    backend = LocalBackend.from_spec(str(tiny_folder))
    yield backend
    backend.close()
