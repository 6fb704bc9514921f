import pytest

from _sst_helpers import FakeNet, make_batch  # noqa: F401


@pytest.fixture
def fake_net_cls():
    return FakeNet


@pytest.fixture
def batch_factory():
    return make_batch
