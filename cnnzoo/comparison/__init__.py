"""``cnnzoo.compare``: which classic CNN for my data? A fair leaderboard of the zoo, in one call.

The modules, one job each:

* :mod:`.api`: :func:`compare` itself (the options, the loop over the models);
* :mod:`.selection`: names, patterns and "auto" -> the models, built for the data;
* :mod:`.data`: the data read, split and put on the device once;
* :mod:`.budget`: a time budget turned into epochs from a measured step cost;
* :mod:`.runner`: one model trained, saved, reloaded and measured (or its failure);
* :mod:`.measure`: MACs (``torch.utils.flop_counter``), throughput, latency, step times;
* :mod:`.store`: the output folder (settings, finished rows, resuming, refusals);
* :mod:`.leaderboard`: :class:`Leaderboard` (Markdown, CSV, JSON);
* :mod:`.row`: :class:`Row`, one model's numbers, every field checked (rows are read back);
* :mod:`.plot`: the accuracy-against-cost picture with its Pareto front.

Example:
    >>> import cnnzoo
    >>> board = cnnzoo.compare("auto", "fashion-mnist", epochs=2, max_params=200_000)
    >>> board.to_markdown()  # doctest: +SKIP
"""

from .api import compare
from .leaderboard import Leaderboard, Row

__all__ = ["Leaderboard", "Row", "compare"]
