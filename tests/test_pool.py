"""hiddenemo.pool.WorkerPool: results in order, a failing call named while the others finish, and a
killed pool stops its own workers only."""
import os

import pytest

from hiddenemo.errors import UserError
from hiddenemo.pool import WorkerPool


def _square_or_refuse(x: int) -> int:
    if x == 3:
        raise UserError("three is refused")
    return x * x


def _pid() -> int:
    return os.getpid()


def test_results_in_order_and_a_failure_named_after_the_others_finish(tmp_path):
    with WorkerPool(2) as pool:
        assert pool.map(_square_or_refuse, [(1,), (2,), (4,)], ["a", "b", "c"], "squares", progress=False) == [1, 4, 16]
        with pytest.raises(UserError, match="call 3: three is refused"):
            pool.map(_square_or_refuse, [(1,), (3,), (5,)], ["call 1", "call 3", "call 5"], "squares", progress=False)


def test_killing_one_pool_leaves_another_pools_workers_alone():
    first, second = WorkerPool(1), WorkerPool(1)
    try:
        first.map(_pid, [()], ["p"], "pid", progress=False)
        kept = second.map(_pid, [()], ["p"], "pid", progress=False)[0]
        first.close(kill=True)
        assert second.map(_pid, [()], ["p"], "pid", progress=False)[0] == kept     # the same worker, alive
    finally:
        first.close(kill=True)
        second.close()
