import itertools

import pytest

from tests.support.broker_process import BrokerProcess

_names = itertools.count()


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """A broker subprocess shared by one test module (topics are unique per test)."""
    process = BrokerProcess(tmp_path_factory.mktemp("broker") / "data").start()
    yield process
    process.stop()


@pytest.fixture
def fresh_broker(tmp_path):
    """A broker of the test's own, for tests that restart, kill or reconfigure it."""
    processes = []

    def make(**overrides) -> BrokerProcess:
        process = BrokerProcess(tmp_path / f"data{len(processes)}",
                                {k.replace("_", "."): str(v) for k, v in overrides.items()})
        processes.append(process)
        return process.start()

    yield make
    for process in processes:
        process.kill()


@pytest.fixture
def topic_name(request):
    base = request.node.name.replace("[", "-").replace("]", "").replace("/", "-")
    return f"t-{next(_names)}-{base}"[:200]
