"""Training: ``fit``, ``evaluate``, ``predict``, ``classify``, ``History`` and Keras callbacks.

Example:
    >>> import cnnzoo
    >>> from cnnzoo.data import load_dataset
    >>> from cnnzoo.training import EarlyStopping
    >>> model = cnnzoo.get_model("lenet5")
    >>> history = cnnzoo.fit(
    ...     model,
    ...     load_dataset("fashion-mnist"),
    ...     val_data=0.1,
    ...     epochs=5,
    ...     callbacks=[EarlyStopping("val_loss", patience=2, restore_best_weights=True)],
    ... )  # doctest: +SKIP
    >>> cnnzoo.evaluate(model, load_dataset("fashion-mnist", "test"))["accuracy"]  # doctest: +SKIP
"""

from .callbacks import BackupAndRestore, EarlyStopping, ModelCheckpoint
from .classify import classify
from .collapse import TrainingCollapseWarning
from .evaluation import evaluate, predict
from .history import History
from .hooks import StopTraining
from .loggers import CSVLogger, TensorBoardLogger
from .loop import fit
from .losses import CrossEntropy
from .lr_finder import LRFinderResult, lr_find
from .monitor import Monitor
from .run import Run

__all__ = [
    "BackupAndRestore",
    "CSVLogger",
    "CrossEntropy",
    "EarlyStopping",
    "History",
    "LRFinderResult",
    "ModelCheckpoint",
    "Monitor",
    "Run",
    "StopTraining",
    "TensorBoardLogger",
    "TrainingCollapseWarning",
    "classify",
    "evaluate",
    "fit",
    "lr_find",
    "predict",
]
