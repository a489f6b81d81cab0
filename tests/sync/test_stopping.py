"""Stop requests inside a sync run wait for a safe point (crmsync.stopping)."""

from __future__ import annotations

import queue
import threading

import pytest

from crmsync import stopping
from crmsync.sync.inflight import InFlight
from crmsync.sync.readahead import read_ahead


class Stop(BaseException):
    pass


def test_outside_a_run_a_request_is_refused_so_the_handler_raises_at_once() -> None:
    assert stopping.request(Stop()) is False
    stopping.check()  # nothing pending: no raise


def test_inside_a_run_a_request_waits_for_the_next_check() -> None:
    reached = []
    with pytest.raises(Stop), stopping.safe_points():
        assert stopping.request(Stop()) is True
        reached.append("after the request")  # the code goes on to its safe point
        stopping.check()
        reached.append("after the check")
    assert reached == ["after the request"]
    # The request went with the run: the next command of the process starts clean.
    with stopping.safe_points():
        stopping.check()


def test_a_second_request_is_refused_so_a_second_ctrl_c_stops_at_once() -> None:
    with pytest.raises(Stop), stopping.safe_points():
        assert stopping.request(Stop()) is True
        assert stopping.request(KeyboardInterrupt()) is False
        stopping.check()


def test_a_stop_that_arrives_after_the_last_safe_point_is_raised_on_the_way_out() -> None:
    finished = []
    with pytest.raises(Stop), stopping.safe_points():
        stopping.request(Stop())
        finished.append(True)
    assert finished == [True]


def test_the_pacing_sleep_is_cut_short_by_a_request_from_another_thread() -> None:
    errors: queue.Queue[BaseException] = queue.Queue()

    def sleeper() -> None:
        try:
            stopping.sleep(30)
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            errors.put(error)

    with pytest.raises(Stop), stopping.safe_points():
        thread = threading.Thread(target=sleeper)
        thread.start()
        stopping.request(Stop())
        thread.join(timeout=10)
        assert not thread.is_alive(), "the sleep ignored the stop request"
        assert isinstance(errors.get_nowait(), Stop)
        stopping.check()


def test_waiting_for_a_slow_page_stops_at_the_request_and_the_reader_is_let_go() -> None:
    release = threading.Event()

    def pages():
        yield 1
        release.wait(30)  # the CRM is slow to answer the second page
        yield 2

    seen = []
    with pytest.raises(Stop), stopping.safe_points():
        reader = read_ahead(pages())
        seen.append(next(reader))
        threading.Timer(0.2, lambda: stopping.request(Stop())).start()
        threading.Timer(0.5, release.set).start()
        try:
            seen.append(next(reader))
        finally:
            reader.close()
    assert seen == [1]


def test_waiting_for_a_write_stops_at_the_request_and_close_still_settles_it() -> None:
    release = threading.Event()
    settled = []
    inflight = InFlight(2)

    def slow_write() -> str:
        release.wait(30)
        return "written"

    with pytest.raises(Stop), stopping.safe_points():
        inflight.submit(slow_write, settled.append)
        inflight.submit(slow_write, settled.append)
        threading.Timer(0.2, lambda: stopping.request(Stop())).start()
        try:
            inflight.submit(slow_write, settled.append)  # blocks: two calls in flight
        finally:
            # The run's clean-up: the writes that were sent are settled, not dropped.
            threading.Timer(0.2, release.set).start()
            inflight.close()
    assert settled == ["written", "written"]
