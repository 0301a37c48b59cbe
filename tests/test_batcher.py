"""The replica's zero-wait batcher: calls arriving together or turn after turn share a batch."""

from __future__ import annotations

import asyncio
from typing import Any

from jupyter_deploy.replica.batcher import Batcher


def test_calls_of_one_turn_share_batches_of_at_most_max_size() -> None:
    seen: list[list[Any]] = []

    def run(items: list[Any]) -> list[Any]:
        seen.append(items)
        return [i * 10 if i != 3 else ValueError("bad") for i in items]

    async def main() -> list[Any]:
        batcher = Batcher(run, max_size=4)
        results = await asyncio.gather(*(batcher.submit(i) for i in range(6)))
        alone = await batcher.submit(7)
        return [*results, alone]

    results = asyncio.run(main())
    assert seen == [[0, 1, 2, 3], [4, 5], [7]]
    assert results[:3] == [0, 10, 20] and isinstance(results[3], ValueError)
    assert results[4:] == [40, 50, 70]


def test_a_batch_that_raises_answers_every_caller_with_the_error() -> None:
    def run(items: list[Any]) -> list[Any]:
        raise RuntimeError("model down")

    async def main() -> list[Any]:
        batcher = Batcher(run, max_size=32)
        return await asyncio.gather(batcher.submit(1), batcher.submit(2))

    assert [str(r) for r in asyncio.run(main())] == ["model down", "model down"]


def test_a_cancelled_caller_is_not_computed_for() -> None:
    seen: list[list[Any]] = []

    async def main() -> Any:
        batcher = Batcher(lambda items: seen.append(items) or items, max_size=32)
        gone = asyncio.ensure_future(batcher.submit("gone"))
        kept = asyncio.ensure_future(batcher.submit("kept"))
        await asyncio.sleep(0)  # both submitted; the flush is scheduled for the next turn
        gone.cancel()
        return await kept

    assert asyncio.run(main()) == "kept"
    assert seen == [["kept"]]


def test_calls_that_keep_arriving_turn_after_turn_share_a_batch() -> None:
    seen: list[list[Any]] = []

    async def main() -> None:
        batcher = Batcher(lambda items: seen.append(items) or items, max_size=32)
        calls = []
        for i in range(4):  # one new call per loop turn, as requests read one by one
            calls.append(asyncio.ensure_future(batcher.submit(i)))
            await asyncio.sleep(0)
        await asyncio.gather(*calls)
        await asyncio.sleep(0)
        await asyncio.gather(*(batcher.submit(i) for i in (10, 11)))  # a later group

    asyncio.run(main())
    assert seen == [[0, 1, 2, 3], [10, 11]]
