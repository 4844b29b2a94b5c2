import numpy as np

from nas_predictor.equivalence import class_mean


class ParitySpace:
    """Toy space: integers as strings, equivalent when they have the same parity."""

    def equivalence_key(self, arch):
        return str(int(arch) % 2)

    def equivalent_archs(self, arch):
        return [str(i) for i in range(6) if i % 2 == int(arch) % 2]


def test_class_mean_averages_scores_over_each_class():
    calls = []

    def score(archs):
        calls.append(list(archs))
        return np.array([float(a) for a in archs])

    out = class_mean(ParitySpace(), ["0", "3", "4"], score)
    np.testing.assert_allclose(out, [2.0, 3.0, 2.0])  # mean(0, 2, 4) and mean(1, 3, 5)
    assert len(calls) == 1 and sorted(calls[0]) == ["0", "1", "2", "3", "4", "5"]


def test_class_mean_only_scores_what_is_not_known():
    seen = []

    def score(archs):
        seen.extend(archs)
        return np.full(len(archs), 10.0)

    out = class_mean(ParitySpace(), ["1"], score, known={"1": 1.0, "3": 3.0})
    assert seen == ["5"]
    np.testing.assert_allclose(out, [(1.0 + 3.0 + 10.0) / 3])
