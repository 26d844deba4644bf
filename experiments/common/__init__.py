"""Parts shared by the trainer and study packages (and the layers above them): run folders
(``runs``: the writer and the reader), config parts, checkpoints, the cluster, statistics, timing,
and the trainer parts several trainers share (``trainer``: ``Trainer``, ``Module``,
``split_module``, ``masked_mean``; ``networks``: the MLP). Imports only the library and ``envs``."""
