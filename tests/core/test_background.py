"""Background tasks end with their block (core/background.py): cancelled, then awaited,
whether the block returns or raises, with each task's clean-up done before the caller
goes on; a task that failed on its own reports its error."""

from __future__ import annotations

import asyncio

import pytest

from core.background import cancelled_on_exit

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _forever(cleaned: list[str], name: str) -> None:
    try:
        await asyncio.Event().wait()
    finally:
        await asyncio.sleep(0)  # a clean-up that itself awaits
        cleaned.append(name)


async def test_the_tasks_are_cancelled_and_cleaned_up_when_the_block_returns() -> None:
    cleaned: list[str] = []
    tasks = [asyncio.create_task(_forever(cleaned, name)) for name in ("a", "b")]
    async with cancelled_on_exit(tasks):
        await asyncio.sleep(0)
        assert not any(task.done() for task in tasks)
    assert sorted(cleaned) == ["a", "b"]
    assert all(task.cancelled() for task in tasks)


async def _failing_block(tasks: list[asyncio.Task[None]]) -> None:
    async with cancelled_on_exit(tasks):
        await asyncio.sleep(0)
        raise RuntimeError("the block failed")


async def test_the_tasks_end_too_when_the_block_raises() -> None:
    cleaned: list[str] = []
    tasks = [asyncio.create_task(_forever(cleaned, "a"))]
    with pytest.raises(RuntimeError, match="the block failed"):
        await _failing_block(tasks)
    assert cleaned == ["a"]
    assert tasks[0].cancelled()


async def test_a_task_that_failed_on_its_own_reports_its_error() -> None:
    async def broken() -> None:
        raise ValueError("the loop broke")

    task = asyncio.create_task(broken())
    with pytest.raises(ValueError, match="the loop broke"):
        async with cancelled_on_exit([task]):
            await asyncio.sleep(0)
