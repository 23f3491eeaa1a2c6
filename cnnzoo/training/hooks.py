"""Dispatch of the callback hooks (described in :mod:`cnnzoo.training.callbacks`).

A callback is any object with some of the hook methods; :class:`CallbackList` calls whichever
each one has, in list order, and turns a :class:`StopTraining` raised by any of them into a stop
request for the loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["HOOKS", "CallbackList", "StopTraining", "has_state"]

HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_batch_begin",
    "on_batch_end",
)


class StopTraining(Exception):
    """Raise from a callback to end training cleanly after the current step."""


def has_state(callback: Any) -> bool:
    """True when ``callback`` has ``state_dict`` and ``load_state_dict``: backups keep its state."""
    return all(
        callable(getattr(callback, name, None)) for name in ("state_dict", "load_state_dict")
    )


class CallbackList:
    """Dispatches each hook to the callbacks that define it."""

    def __init__(self, callbacks: Iterable[Any] | None) -> None:
        self.callbacks = list(callbacks or [])
        for callback in self.callbacks:
            if not any(callable(getattr(callback, hook, None)) for hook in HOOKS):
                raise TypeError(
                    f"callback {callback!r} has none of the hook methods {', '.join(HOOKS)}"
                )
        self.wants_batch_begin = any(hasattr(c, "on_batch_begin") for c in self.callbacks)
        # on_batch_end gets the batch's loss: one device sync per step, paid only when asked.
        self.wants_batch_logs = any(hasattr(c, "on_batch_end") for c in self.callbacks)
        # Keras-style callbacks (with set_model) may stop training with model.stop_training.
        self.uses_model_flag = any(hasattr(c, "set_model") for c in self.callbacks)

    def set_run(self, run: Any) -> None:
        """Give the callbacks that define ``set_run`` the :class:`~cnnzoo.training.Run`."""
        for callback in self.callbacks:
            if callable(getattr(callback, "set_run", None)):
                callback.set_run(run)

    def set_model(self, model: Any) -> None:
        """Give Keras-style callbacks the model (they may set ``model.stop_training``)."""
        for callback in self.callbacks:
            if callable(getattr(callback, "set_model", None)):
                callback.set_model(model)

    def call(self, hook: str, *args: Any) -> bool:
        """Run ``hook`` on every callback; True when one raised :class:`StopTraining`."""
        stop = False
        for callback in self.callbacks:
            method = getattr(callback, hook, None)
            if method is None:
                continue
            try:
                method(*args)
            except StopTraining:
                stop = True
        return stop

    def stateful(self) -> dict[str, Any]:
        """The callbacks with ``state_dict``/``load_state_dict``, by a key stable across runs.

        The key is the class name, with ``#2``, ``#3``... for later callbacks of the same class,
        so a resumed run with the same callbacks matches each saved state to its callback.
        """
        keyed: dict[str, Any] = {}
        for callback in self.callbacks:
            if has_state(callback):
                name = type(callback).__name__
                key, count = name, 1
                while key in keyed:
                    count += 1
                    key = f"{name}#{count}"
                keyed[key] = callback
        return keyed
