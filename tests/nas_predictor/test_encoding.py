import numpy as np
import pytest
import torch

from nas_predictor.encoding import CellTokenizer, GraphBatch, pe_frequencies, positional_encoding
from nas_predictor.errors import GraphError
from nas_predictor.graph import ArchGraph


@pytest.mark.parametrize("variant", ["trans", "nerf", "nerf_float32"])
def test_pe_of_zero_is_sin0_cos1(variant):
    code = positional_encoding(0.0, 5, variant)
    np.testing.assert_array_equal(code, np.tile([0.0, 1.0], 5).astype(np.float32))


def test_trans_frequencies_match_spec():
    np.testing.assert_allclose(pe_frequencies(5, "trans"), [1, 0.158489, 0.0251189, 0.00398107, 0.000630957], rtol=1e-5)


def test_nerf_frequencies_are_linear_up_to_2_pow_L_minus_1():
    f = pe_frequencies(32, "nerf") / np.pi
    assert f[0] == 1.0 and f[-1] == 2.0**31
    np.testing.assert_allclose(np.diff(f), (2.0**31 - 1) / 31)


def test_pe_layout_is_per_frequency_sine_first():
    code = positional_encoding(2.0, 3, "trans")
    a = pe_frequencies(3, "trans")
    expected = np.array([[np.sin(2 * x), np.cos(2 * x)] for x in a]).ravel()
    np.testing.assert_allclose(code, expected, rtol=1e-6)


def test_float64_nerf_codes_are_distinct_and_reproducible():
    codes = positional_encoding(np.arange(8), 32, "nerf")
    assert codes.shape == (8, 64)
    dists = np.linalg.norm(codes[:, None] - codes[None], axis=-1)
    assert (dists + np.eye(8) * 10).min() > 1.0  # every label gets its own code
    np.testing.assert_array_equal(codes, positional_encoding(np.arange(8), 32, "nerf"))


def test_unknown_variant_is_an_error():
    with pytest.raises(ValueError, match="unknown PE variant"):
        positional_encoding(1.0, 4, "fourier")


def _cells():
    return [
        ArchGraph(ops=("in", "a", "b", "out"), edges=[(0, 1), (0, 2), (1, 3), (2, 3)]),
        ArchGraph(ops=("in", "b", "out"), edges=[(0, 1), (1, 2)]),
    ]


def test_tokenizer_pads_and_symmetrises():
    tok = CellTokenizer(("in", "a", "b", "out"))
    batch = tok.encode(_cells())
    assert batch.tokens.shape == (2, 4, 128)
    assert batch.mask.tolist() == [[True] * 4, [True, True, True, False]]
    assert torch.equal(batch.adj, batch.adj.transpose(1, 2))
    assert batch.adj[1, 3].abs().sum() == 0 and batch.tokens[1, 3].abs().sum() == 0
    assert torch.all(batch.adj.diagonal(dim1=1, dim2=2) == 0)
    # token = [f_PE(op code), f_PE(position)]
    expected = np.concatenate([positional_encoding(2, 32, "nerf"), positional_encoding(1, 32, "nerf")])
    np.testing.assert_allclose(batch.tokens[1, 1].numpy(), expected)


def test_tokenizer_names_unknown_op():
    tok = CellTokenizer(("in", "out"))
    with pytest.raises(GraphError, match="unknown op 'conv'"):
        tok.encode([ArchGraph(ops=("in", "conv", "out"), edges=[(0, 1), (1, 2)])])


def test_batch_concat_pads_to_the_larger_graph():
    tok = CellTokenizer(("in", "a", "b", "out"))
    small = tok.encode(_cells()[1:])
    both = GraphBatch.concat([tok.encode(_cells()[:1]), small])
    assert both.tokens.shape == (2, 4, 128)
    assert torch.equal(both.tokens[1, :3], small.tokens[0])
    assert both.mask[1].tolist() == [True, True, True, False]
