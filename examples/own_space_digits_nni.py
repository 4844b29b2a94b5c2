"""The digits space of ``own_space_digits.py`` as an NNI 3.0 model space (``pip install "nas-predictor[nni]"``).

One ``nni.choice`` per choice of ``CHOICES``, labelled with the choice's name, and the network built by the
same ``build(config)``: an NNI sample is a config of the ``PythonSpace``, so ``space.arch_of(sample)`` is
its id there, and a network frozen from a sample is the one the stand-alone search trains and times.
(``LayerChoice`` / ``Repeat`` would describe the same networks, but as a second definition that could drift
from the first.)

    from own_space_digits_nni import DigitsModelSpace
    model_space = DigitsModelSpace()
    sample = {}
    net = model_space.random(sample)      # a frozen network; sample is filled with its choices

An NNI ``NasExperiment`` over this space with our ``PredictorGuidedStrategy`` (strategies.nni_bridge) is
the example's NNI half: ``own_space_digits.run_nni`` (``python examples/own_space_digits.py --nni``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nni
from nni.mutable import ensure_frozen
from nni.nas.nn.pytorch import ModelSpace
from nni.nas.space import model_context

sys.path.insert(0, str(Path(__file__).resolve().parent))
from own_space_digits import CHOICES, build  # noqa: E402


class DigitsModelSpace(ModelSpace):
    """:data:`own_space_digits.CHOICES` as NNI mutables; frozen, a module holding ``build(config)``."""

    def __init__(self) -> None:
        super().__init__()
        # ensure_frozen: the first value while NNI dry-runs the space, the sampled one inside model_context
        self.config = {label: ensure_frozen(self.add_mutable(nni.choice(label, list(values))))
                       for label, values in CHOICES.items()}
        self.net = build(self.config)

    def forward(self, x):
        return self.net(x)

    def freeze(self, sample: dict) -> "DigitsModelSpace":
        # the space's choices are its own mutables (no LayerChoice to freeze): build it again with the sample
        with model_context(sample):
            return self.__class__()
