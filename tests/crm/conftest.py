"""Fixtures of the CRM tests."""

import pytest

from bot.core.db import get_engine


@pytest.fixture
async def url(db_url: str):
    """The test's business DB (``db_url``), its engine disposed of afterwards."""
    yield db_url
    await get_engine(db_url).dispose()
