"""``fit(ema=...)``: an exponential moving average of the weights, swapped in at each epoch's end.

The average is a :class:`torch.optim.swa_utils.AveragedModel` of the model, parameters and
buffers (BatchNorm statistics) alike, updated after every optimizer step with
:func:`torch.optim.swa_utils.get_ema_multi_avg_fn`. As in TensorFlow's
``ExponentialMovingAverage(num_updates=...)``, the decay warms up: update ``t`` (0-based) uses
``min(decay, (1 + t) / (10 + t))``, so the average soon forgets the random initialisation even
in short runs.

As Lightning's ``WeightAveraging`` callback does, the averaged weights are swapped into the model
at the end of every epoch, before validation, and stay there through the epoch-end callbacks:
validation metrics, ``ModelCheckpoint`` files and the best weights of ``EarlyStopping`` are
those of the average. The training weights come back at the start of the next epoch; after the
last epoch the model keeps the average. For :class:`~cnnzoo.training.BackupAndRestore` the
state holds both, so a resumed run goes on training the raw weights.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

__all__ = ["DEFAULT_EMA_DECAY", "ExponentialMovingAverage"]

DEFAULT_EMA_DECAY = 0.999


def _named_tensors(model: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters then buffers, by name, in the order ``AveragedModel`` pairs them."""
    return [*model.named_parameters(), *model.named_buffers()]


class ExponentialMovingAverage:
    """The moving average of ``model``'s weights that ``fit(ema=decay)`` keeps.

    It is also a callback of the run: ``on_epoch_begin`` puts the training weights back, and
    ``state_dict``/``load_state_dict`` let :class:`~cnnzoo.training.BackupAndRestore` keep it.

    Args:
        model: The model being trained (not wrapped), already on its device.
        decay: The decay in (0, 1); the average spans about ``1 / (1 - decay)`` steps.

    Attributes:
        averaged: The ``AveragedModel``; ``averaged.module`` holds the averaged weights.
        updates: Optimizer steps averaged so far.
    """

    def __init__(self, model: nn.Module, decay: float = DEFAULT_EMA_DECAY) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the EMA decay must be in (0, 1), e.g. 0.999; got {decay!r}")
        self.model = model
        self.decay = float(decay)
        self.averaged = AveragedModel(
            model, multi_avg_fn=get_ema_multi_avg_fn(self.decay), use_buffers=True
        )
        self.updates = 0
        self._names = [name for name, _ in _named_tensors(model)]
        pairs = list(
            zip(
                (t for _, t in _named_tensors(self.averaged.module)),
                (t for _, t in _named_tensors(model)),
                strict=True,
            )
        )
        # Floating tensors are averaged; integer buffers (BatchNorm's num_batches_tracked) copied.
        floating = [(a, m) for a, m in pairs if a.is_floating_point()]
        self._average_floats = [a for a, _ in floating]
        self._model_floats = [m for _, m in floating]
        self._copied = [(a, m) for a, m in pairs if not a.is_floating_point()]
        self._average_all = [a for a, _ in pairs]
        self._model_all = [m for _, m in pairs]
        self._raw: list[torch.Tensor] | None = None  # the training weights while swapped out

    def decay_at(self, update: int) -> float:
        """The decay of update ``update`` (0-based): the warm-up, capped at ``decay``."""
        return min(self.decay, (1.0 + update) / (10.0 + update))

    @torch.no_grad()
    def update(self) -> None:
        """Fold the model's current weights into the average (after an optimizer step).

        Only device work: ``AveragedModel.update_parameters`` would read its counter back from
        the device every step, so the lists of tensors are kept and averaged here directly.
        """
        if self._average_floats:
            average = get_ema_multi_avg_fn(self.decay_at(self.updates))
            average(self._average_floats, self._model_floats, None)
        for averaged, current in self._copied:
            averaged.copy_(current)
        self.updates += 1
        self.averaged.n_averaged += 1  # a CPU counter: no sync

    @property
    def swapped_in(self) -> bool:
        """True while the model holds the averaged weights."""
        return self._raw is not None

    @torch.no_grad()
    def swap_in(self) -> None:
        """Put the averaged weights into the model, keeping the training weights aside."""
        if self._raw is not None:
            return
        self._raw = [t.detach().clone() for t in self._model_all]
        torch._foreach_copy_(self._model_all, self._average_all)

    @torch.no_grad()
    def swap_out(self) -> None:
        """Put the training weights back into the model."""
        if self._raw is None:
            return
        torch._foreach_copy_(self._model_all, self._raw)
        self._raw = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        """Train on the raw weights again (the average was swapped in at the last epoch's end)."""
        self.swap_out()

    def state_dict(self) -> dict[str, Any]:
        """The averaged and the training weights, by name, and the number of updates."""
        raw = self._raw if self._raw is not None else self._model_all
        return {
            "updates": self.updates,
            "average": {
                n: t.detach().cpu().clone()
                for n, t in zip(self._names, self._average_all, strict=True)
            },
            "raw": {n: t.detach().cpu().clone() for n, t in zip(self._names, raw, strict=True)},
        }

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned: the model gets the training weights."""
        for key in ("average", "raw"):
            missing = set(self._names) - set(state[key])
            if missing:
                raise ValueError(
                    f"the saved EMA state does not fit this model: no {key} value for "
                    f"{sorted(missing)[:3]}"
                )
        for name, averaged, current in zip(
            self._names, self._average_all, self._model_all, strict=True
        ):
            averaged.copy_(state["average"][name])
            current.copy_(state["raw"][name])
        self.updates = int(state["updates"])
        self.averaged.n_averaged.fill_(self.updates)
        self._raw = None
