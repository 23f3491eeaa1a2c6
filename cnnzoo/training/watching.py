"""The collapse watch's place in the epoch loop: judge each epoch, warn once, record it.

:class:`~cnnzoo.training.collapse.CollapseWatch` holds the rules; this module feeds it an
epoch's figures and, at the last epoch of a run without validation data, the accuracy of the
weights the run ended with (an epoch's training accuracy is a mean over weights that changed
during it), then warns and records what it finds.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from .._advice import for_cli
from .alert_words import cli_wording
from .collapse import MIN_JUDGED_IMAGES, TrainingCollapseWarning
from .evaluation import _eval_mode
from .feed import Batches
from .losses import main_logits
from .precision import autocast
from .run import Run

__all__ = ["sample_accuracy", "watch_epoch"]


def watch_epoch(
    run: Run,
    epoch: int,
    logs: dict[str, float],
    cut_short: bool = False,
    stopped_here: bool = False,
) -> None:
    """Warn once, and record in the History, when the epoch shows the run going wrong.

    Args:
        run: The run.
        epoch: The epoch that ended, 0-based.
        logs: Its metrics.
        cut_short: A callback stopped the run during the epoch (``StopTraining``, such as
            compare's timing probe): the run's end is not judged on it.
        stopped_here: A callback (``EarlyStopping``) ended the run at this epoch's end, after
            the epoch was watched: judged again, now as where the run ended.
    """
    if run.watch is None or not run.dist.is_main:
        return
    peak = run.history.params.get("lr")
    last = (stopped_here or epoch + 1 == run.config.epochs) and not cut_short
    lr = peak if isinstance(peak, float) else None
    end = None
    if last and run.watch.wants_end_accuracy(logs):  # judged where it ended
        end = sample_accuracy(
            run.model, run.train_batches, run.dtype, min_samples=MIN_JUDGED_IMAGES
        )
    alert = run.watch.check(epoch, logs, lr, run.steps_done, last, end)
    if alert is not None:
        run.history.alerts.append(alert)
        # stacklevel 5: the warning points at the user's fit() call
        # (fit -> _train -> _train_held -> watch_epoch; tests/test_collapse.py checks it).
        message = alert["message"]
        warning = for_cli(TrainingCollapseWarning(message), cli_wording(message))
        warnings.warn(warning, stacklevel=5)


def sample_accuracy(
    model: nn.Module,
    batches: Batches,
    dtype: torch.dtype | None,
    max_batches: int = 8,
    min_samples: int = 1,
) -> float | None:
    """Accuracy of ``model`` (in eval mode) on the first ``max_batches`` of ``batches``.

    More batches are read while fewer than ``min_samples`` were scored (small batches).

    fit's collapse watch judges a run without validation data by where its weights ended with
    it; 8 batches (1,024 images at batch 128) tell chance from learning at a small cost.

    Returns:
        The share of correct answers, or None when fewer than ``min_samples`` were scored.
    """
    correct = seen = 0
    with _eval_mode(model), torch.inference_mode():
        for step, (x, y) in enumerate(batches.epoch(0)):
            if y is None or (step >= max_batches and seen >= min_samples):
                break
            with autocast(x.device, dtype):
                logits = main_logits(model(x))
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
    return correct / seen if seen >= max(1, min_samples) else None
