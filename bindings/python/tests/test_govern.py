"""The governor and scheduler from Python: admission, accounting, the async form, emergency stop."""

import pytest

import grey


@pytest.fixture
def governor():
    with grey.Context(backends="host") as ctx, grey.Governor(ctx, sample_period_ms=0) as gov:
        yield gov


def test_admit_release_and_stats(governor):
    app = governor.tenant("py", weight=2.0, priority=1)
    governor.step()
    with app.admit(0, 1000) as work:
        assert work.device == 0 and work.duty == 1.0 and not work.should_yield
    stats = app.stats()
    assert (stats.name, stats.weight, stats.priority, stats.admitted_count, stats.running) == ("py", 2.0, 1, 1, 0)
    assert [t.name for t in governor.tenants()] == ["py"]
    assert governor.device(0).admitted_count == 1


def test_async_timeout_and_emergency_stop(governor):
    app = governor.tenant("async")
    big = app.admit(0, 10_000_000_000, timeout_ns=0)
    ticket = app.submit(0, 1000)
    with pytest.raises(grey.Timeout):
        app.wait(ticket, 0)
    governor.emergency_stop("from python")
    with pytest.raises(grey.Stopped):
        app.wait(ticket, 0)
    with pytest.raises(grey.Stopped, match="emergency stop"):
        app.admit(0, 1, timeout_ns=0)
    state = governor.state()
    assert state.stopped and state.stop_reason == "from python" and governor.device(0).mode == "stopped"
    governor.resume()
    big.release(actual_ns=1)
    app.admit(0, 1, timeout_ns=0).release()
    with pytest.raises(grey.InvalidArgument, match="weight"):
        app.set_weight(0.0)


def test_configure_from_a_profile(governor):
    governor.configure(grey.Config("aggressive"))
    state = governor.state()
    assert (state.priority_levels, state.strategy, state.preemption_allowed) == (5, "reactive", True)


def test_tenant_names_are_checked(governor):
    governor.tenant("same")
    with pytest.raises(grey.InvalidArgument, match="already exists"):
        governor.tenant("same")
    with pytest.raises(grey.InvalidArgument):
        governor.tenant("bad\x00name")
