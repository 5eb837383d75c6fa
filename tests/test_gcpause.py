"""The cyclic GC pause: shared by a worker's threads, and it gives back the collector as it found it."""

import gc
import threading

import pytest

from service.runtime.gcpause import CyclicGcPause


@pytest.fixture
def collector_restored():
    was_enabled = gc.isenabled()
    yield
    (gc.enable if was_enabled else gc.disable)()


@pytest.mark.parametrize("enabled_before", [True, False])
def test_the_collector_is_left_as_it_was(collector_restored, enabled_before):
    (gc.enable if enabled_before else gc.disable)()
    pause = CyclicGcPause()
    with pause():
        assert not gc.isenabled()
    assert gc.isenabled() is enabled_before


def test_the_collector_stays_paused_until_the_last_thread_is_done(collector_restored):
    gc.enable()
    pause = CyclicGcPause()
    first_in, second_in, first_may_leave, first_left, second_may_leave = (threading.Event() for _ in range(5))
    seen = {}

    def first():
        with pause():
            first_in.set()
            first_may_leave.wait(10)
        first_left.set()

    def second():
        first_in.wait(10)
        with pause():
            second_in.set()
            second_may_leave.wait(10)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    second_in.wait(10)
    first_may_leave.set()
    first_left.wait(10)
    seen["after the first left"] = gc.isenabled()
    second_may_leave.set()
    for thread in threads:
        thread.join(10)
    assert seen == {"after the first left": False}
    assert gc.isenabled()
