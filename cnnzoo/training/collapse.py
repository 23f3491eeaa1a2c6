"""Noticing a run that goes wrong without becoming NaN: a blow-up, a collapse, a stall.

A NaN loss stops ``fit`` at once (``FloatingPointError``). A run can also fail with finite
numbers, and then returns as if all went well: the rate is too high for the model, the loss
explodes to thousands and comes back down to the chance level, and the model ends predicting one
class. At the end of every epoch :class:`CollapseWatch` compares the epoch's figures with where
the run started and with the chance level of the data:

* **blow-up**: the epoch's mean training loss is more than :data:`BLOWUP_FACTOR` times the loss
  the run started at (at least ``ln(num_classes)``, the loss of a uniform guess);
* **collapse**: the accuracy (validation when there is validation data, else training) fell
  back to within :data:`CHANCE_MARGIN` of chance after it had been at least
  :data:`RISEN_MARGIN` above it;
* **stall**: the default loss is no better than a guess from the class frequencies alone (the
  labels' entropy; ``ln(num_classes)`` when they are balanced or unknown) with chance
  accuracy, after at least :data:`STALL_MIN_STEPS` optimizer steps, or at the run's last epoch
  after :data:`STALL_MIN_STEPS_AT_END`; and, however short the run, when the weights it ends
  with score no better than chance: on the validation data, or without it on a sample of the
  training images (an epoch's training accuracy is a mean over weights that changed during it,
  so a one-epoch run is judged by where it ended), when at least :data:`MIN_JUDGED_IMAGES`
  images were scored (fewer cannot tell 5 points above chance from chance). Labels of a single
  class are never a stall: there is nothing to learn from them.

Chance is the accuracy of always answering the most frequent class of the labels scored. The
first alert of a run is warned (:class:`TrainingCollapseWarning`, with the figures, the rate in
use, a lower one and ``cnnzoo.lr_find``) and recorded in ``History.alerts``; the training goes on
unchanged (see the training guide for why).
"""

from __future__ import annotations

import math
import reprlib
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "ALERT_KINDS",
    "BLOWUP_FACTOR",
    "CHANCE_MARGIN",
    "MESSAGE_END",
    "MIN_JUDGED_IMAGES",
    "RISEN_MARGIN",
    "STALL_MIN_STEPS",
    "STALL_MIN_STEPS_AT_END",
    "CollapseWatch",
    "TrainingCollapseWarning",
    "is_fit_message",
    "label_entropy",
    "majority_share",
]

BLOWUP_FACTOR = 3.0
CHANCE_MARGIN = 0.05
RISEN_MARGIN = 0.10
STALL_MIN_STEPS = 100
STALL_MIN_STEPS_AT_END = 20
# Images the end of a run is judged on, at the least: the standard error of an accuracy near
# 25% on 100 images is 4 points, so a run that learned 15 points above chance is not called a
# stall by the luck of the draw.
MIN_JUDGED_IMAGES = 100
# A stalled loss is no more than this share below ln(num_classes).
_STALL_LOSS_SHARE = 0.02
ALERT_KINDS = ("blow-up", "collapse", "stall")
# What each kind's message says after "fit: at epoch N the training ", and how every message
# ends: _diagnose and check write them, and a saved alert is checked against them.
MESSAGE_END = "fit goes on as asked; History.alerts records this."
_KIND_WORDS = {
    "blow-up": ("blew up",),
    "collapse": ("collapsed",),
    "stall": ("learned nothing", "is not learning"),
}
# The figures of an alert (see CollapseWatch.check): finite numbers or None; shares in [0, 1].
_ALERT_FIGURES = ("loss", "start_loss", "accuracy", "best_accuracy", "chance", "lr")
_SHARES = ("accuracy", "best_accuracy", "chance")
_WATCH_FIELDS = ("start_loss", "best_accuracy", "warned", "steps_done", "alerts")
# No message fit writes comes near this; a longer one in a saved state is not fit's.
_MAX_MESSAGE_CHARS = 4000
_MAX_STEPS = 10**12  # more optimizer steps than any run takes
# A saved value named in an error message is shown cut short: the file may hold megabytes.
_SHOWN = reprlib.Repr()  # (keyword arguments only from Python 3.12)
_SHOWN.maxstring = _SHOWN.maxother = 60
_SHOWN.maxlong, _SHOWN.maxlist, _SHOWN.maxdict, _SHOWN.maxlevel = 30, 6, 6, 2


class TrainingCollapseWarning(UserWarning):
    """``fit`` saw the training go wrong without a NaN: see ``History.alerts``."""


def label_entropy(labels: torch.Tensor | None, num_classes: int) -> float | None:
    """Entropy (nats) of the labels' class frequencies, or None when they are not known."""
    if labels is None or labels.numel() == 0:
        return None
    counts = torch.bincount(labels.detach().reshape(-1).long().cpu(), minlength=num_classes)
    shares = counts[counts > 0].double() / labels.numel()
    return float(-(shares * shares.log()).sum())


def majority_share(labels: torch.Tensor | None, num_classes: int) -> float:
    """Accuracy of always answering the most frequent label (``1 / num_classes`` if unknown)."""
    if labels is None or labels.numel() == 0:
        return 1.0 / max(1, num_classes)
    counts = torch.bincount(labels.detach().reshape(-1).long().cpu(), minlength=num_classes)
    return float(counts.max()) / labels.numel()


@dataclass
class CollapseWatch:
    """Watches a run's epochs for a blow-up, a collapse or a stall (see the module docstring).

    Args:
        num_classes: The width of the model's output.
        train_chance: Chance accuracy of the training labels.
        val_chance: Chance accuracy of the validation labels, or None without validation data.
        default_loss: True for fit's own cross-entropy (its uniform-guess loss is
            ``ln(num_classes)``, which the stall rule needs).
        lr_source: Where the peak rate came from, named in the message.
        label_entropy: Entropy of the training labels (the loss of a guess that knows only the
            class frequencies), or None when they are not known up front (then ln(classes)).
        val_images: Validation images, or None without validation data.
    """

    num_classes: int
    train_chance: float
    val_chance: float | None
    default_loss: bool
    lr_source: str
    label_entropy: float | None = None
    val_images: int | None = None
    start_loss: float | None = None
    best_accuracy: float | None = None
    warned: bool = False

    def note_start(self, loss: float) -> None:
        """The mean loss of the run's first batches (called once, at the first progress sync)."""
        if self.start_loss is None and math.isfinite(loss):
            self.start_loss = loss

    def state_dict(self, alerts: list[dict[str, Any]], steps_done: int) -> dict[str, Any]:
        """What a resumed run needs to watch on as the uninterrupted one would (plain JSON).

        Args:
            alerts: The run's ``History.alerts`` so far.
            steps_done: Optimizer steps taken so far (the stall rule counts them).
        """
        return {
            "start_loss": self.start_loss,
            "best_accuracy": self.best_accuracy,
            "warned": self.warned,
            "steps_done": int(steps_done),
            "alerts": [dict(alert) for alert in alerts],
        }

    def load_state_dict(self, state: Any, epochs_done: int) -> tuple[list[dict[str, Any]], int]:
        """Restore what :meth:`state_dict` returned; give back the alerts and the steps done.

        Every field is checked, since the state comes from a file.

        Args:
            state: The saved state.
            epochs_done: Epochs the saved run finished (an alert names one of them).

        Raises:
            ValueError: The state is not one :meth:`state_dict` writes (the message says how).
        """
        _check_fields(state, _WATCH_FIELDS, "the watch's state")
        start_loss = _figure(state["start_loss"], "start_loss")
        best = _figure(state["best_accuracy"], "best_accuracy", share=True)
        warned, steps, alerts = state["warned"], state["steps_done"], state["alerts"]
        if not isinstance(warned, bool):
            raise ValueError(f"warned is {_SHOWN.repr(warned)}, not a boolean")
        if isinstance(steps, bool) or not isinstance(steps, int) or not 0 <= steps <= _MAX_STEPS:
            raise ValueError(f"steps_done is {_SHOWN.repr(steps)}, not a step count")
        if not isinstance(alerts, list) or len(alerts) > 1 or len(alerts) != warned:
            raise ValueError("alerts must be a list holding the one alert of a warned run")
        checked = [_checked_alert(alert, epochs_done) for alert in alerts]
        self.start_loss, self.best_accuracy, self.warned = start_loss, best, warned
        return checked, steps

    def reference_loss(self) -> float:
        """Where the run started: its first batches' loss, and at least a uniform guess's."""
        uniform = math.log(max(2, self.num_classes))
        if self.start_loss is None:
            return uniform
        return max(uniform, self.start_loss) if self.default_loss else self.start_loss

    def check(
        self,
        epoch: int,
        logs: dict[str, float],
        peak_lr: float | None,
        steps_done: int,
        last: bool = False,
        end_accuracy: float | None = None,
    ) -> dict[str, Any] | None:
        """Look at one finished epoch; return the alert the first time one fires (once a run).

        Args:
            epoch: The epoch, 0-based.
            logs: The epoch's metrics (``loss``, ``accuracy``, ``val_accuracy`` if any).
            peak_lr: The run's peak learning rate (None: an optimizer the user built).
            steps_done: Optimizer steps taken so far in this run.
            last: True at the run's last epoch.
            end_accuracy: At the last epoch of a run without validation data, the accuracy of
                the final weights on a sample of at least :data:`MIN_JUDGED_IMAGES` training
                images (see :meth:`wants_end_accuracy`).

        Returns:
            The alert recorded in ``History.alerts``, or None.
        """
        if self.warned:
            return None
        kind, what, judged, chance = self._diagnose(logs, steps_done, last, end_accuracy)
        accuracy = self._accuracy(logs)
        if accuracy is not None and (self.best_accuracy is None or accuracy > self.best_accuracy):
            self.best_accuracy = accuracy
        if kind is None:
            return None
        self.warned = True
        message = (
            f"fit: at epoch {epoch + 1} the training {what}. {self._fix(kind, peak_lr)} "
            f"{MESSAGE_END}"
        )
        return {
            "epoch": epoch,
            "kind": kind,
            "message": message,
            "loss": logs.get("loss"),
            "start_loss": self.reference_loss(),
            # the figures the message quotes: the accuracy judged and the chance it was held to
            "accuracy": judged,
            "best_accuracy": self.best_accuracy,
            "chance": chance,
            "lr": peak_lr,
        }

    def wants_end_accuracy(self, logs: dict[str, float]) -> bool:
        """Whether the last epoch needs the end measurement on training images.

        Only when an alert could still follow from it: the run was not warned, its labels hold
        more than one class, it has no validation data of at least :data:`MIN_JUDGED_IMAGES`
        images to be judged on instead, and the epoch's training accuracy is near chance.
        """
        accuracy = logs.get("accuracy")
        return (
            not self.warned
            and not self._judged_on_validation
            and not self._one_class
            and accuracy is not None
            and accuracy <= self.train_chance + RISEN_MARGIN
        )

    @property
    def _judged_on_validation(self) -> bool:
        """Enough validation images to judge the end of a run on them."""
        return self.val_chance is not None and (self.val_images or 0) >= MIN_JUDGED_IMAGES

    @property
    def _one_class(self) -> bool:
        """The training labels hold a single class: nothing to learn, so never a stall."""
        return self.label_entropy == 0.0 or self.train_chance >= 1.0

    def _accuracy(self, logs: dict[str, float]) -> float | None:
        value = logs.get("val_accuracy") if self.val_chance is not None else logs.get("accuracy")
        return None if value is None or not math.isfinite(value) else float(value)

    def _chance(self, logs: dict[str, float]) -> float:
        return self.val_chance if self.val_chance is not None else self.train_chance

    def _diagnose(
        self, logs: dict[str, float], steps_done: int, last: bool, end_accuracy: float | None
    ) -> tuple[str | None, str, float | None, float]:
        """The alert's kind (None: no alert), its words, and the accuracy and chance judged."""
        loss = logs.get("loss")
        accuracy, chance = self._accuracy(logs), self._chance(logs)
        reference = self.reference_loss()
        # (a loss that starts at or below 0, a user's, has no "3x where it started")
        if (
            reference > 0
            and loss is not None
            and math.isfinite(loss)
            and loss > BLOWUP_FACTOR * reference
        ):
            return (
                "blow-up",
                f"{_KIND_WORDS['blow-up'][0]}: the training loss rose to {loss:.4g}, more than "
                f"{BLOWUP_FACTOR:g}x the {reference:.3g} it started at",
                accuracy,
                chance,
            )
        which = "validation" if self.val_chance is not None else "training"
        best = self.best_accuracy
        if (
            accuracy is not None
            and best is not None
            and best >= chance + RISEN_MARGIN
            and accuracy <= chance + CHANCE_MARGIN
        ):
            return (
                "collapse",
                f"{_KIND_WORDS['collapse'][0]}: {which} accuracy fell to {accuracy:.4f}, back "
                f"{_near(accuracy, chance, CHANCE_MARGIN, at='to')} the chance level "
                f"{chance:.4f}, after reaching {best:.4f}",
                accuracy,
                chance,
            )
        if self._one_class:
            return None, "", None, chance
        uniform = math.log(max(2, self.num_classes))
        # A guess that knows only the class frequencies: the labels' entropy (ln C if balanced).
        prior = self.label_entropy if self.label_entropy is not None else uniform
        if (
            self.default_loss
            and (steps_done >= STALL_MIN_STEPS or (last and steps_done >= STALL_MIN_STEPS_AT_END))
            and loss is not None
            and loss >= (1 - _STALL_LOSS_SHARE) * prior
            and accuracy is not None
            and accuracy <= chance + CHANCE_MARGIN
        ):
            return (
                "stall",
                f"{_KIND_WORDS['stall'][0 if last else 1]}: after {steps_done} steps "
                f"the training loss is {loss:.4g}, no better than a guess from the class "
                f"frequencies alone ({prior:.4g}), and {which} accuracy {accuracy:.4f} is "
                f"{_near(accuracy, chance, CHANCE_MARGIN)} the chance level {chance:.4f}",
                accuracy,
                chance,
            )
        if self._judged_on_validation:
            final, images = accuracy, "validation images"
        else:
            final, images, chance = end_accuracy, "training images", self.train_chance
        # Within 5 points of chance, and never more than half way from chance to every answer
        # right: where chance is 0.95 or more, a final 1.0 is not "no better than chance".
        margin = min(CHANCE_MARGIN, (1.0 - chance) / 2)
        if (
            last
            and steps_done >= 1
            and final is not None
            and final < 1.0
            and (final <= chance + margin)
        ):
            return (
                "stall",
                f"{_KIND_WORDS['stall'][0]}: after {steps_done} steps the weights it ends with "
                f"score {final:.4f} on the {images}, {_near(final, chance, margin)} always "
                f"answering their most frequent class ({chance:.4f})",
                final,
                chance,
            )
        return None, "", None, chance

    def _fix(self, kind: str, peak_lr: float | None) -> str:
        find = "or find one with cnnzoo.lr_find(model, train_data)"
        if kind == "stall":  # too low a rate, too few steps or labels that carry no signal
            rate = "" if peak_lr is None else f" at the peak learning rate {peak_lr:.3g}"
            return (
                f"It learned nothing{rate} ({self.lr_source}): train longer (more epochs or "
                f"data), check that the labels match the images, or pick a rate with "
                "cnnzoo.lr_find(model, train_data)."
            )
        if peak_lr is None:
            return f"Lower your optimizer's learning rate, {find}."
        return (
            f"The peak learning rate {peak_lr:.3g} ({self.lr_source}) is likely too high for "
            f"this model and data: try lr={peak_lr / 10:.3g}, {find}."
        )


def _near(accuracy: float, chance: float, margin: float, at: str = "no better than") -> str:
    """How an accuracy judged no better than chance stands to it, in words (``at`` if level)."""
    if round(accuracy, 4) <= round(chance, 4):  # as the message prints them
        return at
    return f"within {margin * 100:.3g} points of"


def _check_fields(value: Any, fields: tuple[str, ...], what: str) -> None:
    """``value`` is a dict with exactly ``fields`` as its keys."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} is a {type(value).__name__}, not a dict")
    if not all(isinstance(key, str) for key in value) or set(value) != set(fields):
        raise ValueError(
            f"{what} has the fields {_SHOWN.repr(list(value))}, not {', '.join(sorted(fields))}"
        )


def _figure(value: Any, name: str, share: bool = False) -> float | None:
    """A saved figure: a finite number (a share of 0 to 1 when ``share``), or None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} is {_SHOWN.repr(value)}, not a number")
    try:
        figure = float(value)
    except OverflowError:  # an integer of hundreds of digits
        figure = math.inf
    if not math.isfinite(figure) or (share and not 0.0 <= figure <= 1.0):
        kind = "a share from 0 to 1" if share else "a finite number"
        raise ValueError(f"{name} is {_SHOWN.repr(value)}, not {kind}")
    return figure


def is_fit_message(message: Any, kind: str, epoch: int) -> bool:
    """Whether ``message`` is one ``fit`` writes for a ``kind`` alert at 0-based ``epoch``.

    A saved alert is printed to the user and into tables: one whose words are not fit's (or
    that holds escape sequences or other unprintable characters) is not taken from a file.
    """
    opening = f"fit: at epoch {epoch + 1} the training "
    return (
        isinstance(message, str)
        and kind in _KIND_WORDS
        and len(message) <= _MAX_MESSAGE_CHARS
        and message.isprintable()
        and message.startswith(tuple(opening + words for words in _KIND_WORDS[kind]))
        and message.endswith(MESSAGE_END)
    )


def _checked_alert(alert: Any, epochs_done: int) -> dict[str, Any]:
    """One saved alert, checked field by field (it is printed to the user and into files).

    The message must be one ``fit`` writes for the alert's kind and epoch, so a file cannot
    make the CLI print words of its own.
    """
    _check_fields(alert, ("epoch", "kind", "message", *_ALERT_FIGURES), "an alert")
    epoch, kind, message = alert["epoch"], alert["kind"], alert["message"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < epochs_done:
        raise ValueError(
            f"an alert's epoch is {_SHOWN.repr(epoch)}, not one of the {epochs_done} run"
        )
    if not isinstance(kind, str) or kind not in ALERT_KINDS:
        raise ValueError(
            f"an alert's kind is {_SHOWN.repr(kind)}, not one of {', '.join(ALERT_KINDS)}"
        )
    if not is_fit_message(message, kind, epoch):
        raise ValueError(f"an alert's message is not one fit writes for a {kind} at epoch {epoch}")
    figures = {name: _figure(alert[name], name, share=name in _SHARES) for name in _ALERT_FIGURES}
    if figures["lr"] is not None and figures["lr"] < 0:
        raise ValueError(f"an alert's lr is {figures['lr']!r}, not a rate of 0 or more")
    return {"epoch": epoch, "kind": kind, "message": message, **figures}
