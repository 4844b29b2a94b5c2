"""The bodies of the ``nas-predictor`` commands, one module each, imported only when their command runs
(so ``--help`` and ``list`` never pay for torch)."""
