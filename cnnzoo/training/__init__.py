"""Training: ``fit``, ``evaluate``, ``predict``, ``History`` and callbacks.

Example:
    >>> import cnnzoo
    >>> from cnnzoo.data import load_dataset
    >>> model = cnnzoo.get_model("lenet5")
    >>> history = cnnzoo.fit(model, load_dataset("fashion-mnist"), val_data=0.1, epochs=5)
    >>> cnnzoo.evaluate(model, load_dataset("fashion-mnist", "test"))["accuracy"]  # doctest: +SKIP
"""

from .callbacks import StopTraining
from .evaluation import evaluate, predict
from .history import History
from .loop import fit

__all__ = ["History", "StopTraining", "evaluate", "fit", "predict"]
