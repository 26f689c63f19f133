"""A lighter :class:`asyncio.Event` for objects every connection holds.

An ``asyncio.Event`` allocates a deque for its waiters up front (about 380 bytes with the object);
a connection holds several and almost never waits on them. :class:`Flag` behaves the same for
``set``/``clear``/``is_set``/``wait`` and allocates only when something waits.
"""

from __future__ import annotations

import asyncio

__all__ = ["Flag"]


class Flag:
    """``asyncio.Event`` semantics in two slots; waiters are futures of the running loop."""

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: bool = False) -> None:
        self._value = value
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        """Whether the flag is set."""
        return self._value

    def set(self) -> None:
        """Set the flag and wake every waiter."""
        if self._value:
            return
        self._value = True
        waiters = self._waiters
        if waiters:
            self._waiters = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def clear(self) -> None:
        """Unset the flag; later waiters wait until it is set again."""
        self._value = False

    async def wait(self) -> None:
        """Return once the flag is set (at once if it is)."""
        if self._value:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            waiters = self._waiters
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
