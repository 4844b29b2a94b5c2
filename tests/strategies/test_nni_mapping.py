"""NNI samples <-> our arch strings, both ways, checked against NNI's own label names and parsers.

The first tests are pure dict code (no NNI); the rest compare with NNI's spaces and run only with it."""

from __future__ import annotations

import numpy as np
import pytest

from nas_predictor.errors import ArchError, ConfigError
from search_spaces.nasbench101 import NASBench101
from search_spaces.nasbench201 import NASBench201
from strategies.nni_bridge.mapping import (
    NB201_LABELS,
    SampleMapping,
    check_space,
    detect_mapping,
    mapping_for_sample,
    nb101_arch_to_sample,
    nb101_sample_to_arch,
    nb201_arch_to_sample,
    nb201_sample_to_arch,
)

ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
# a 5-vertex cell: in -> 1 (conv3x3) -> 3 (maxpool) -> out, in -> 2 (conv1x1) -> 3, in -> out
NB101_ARCH = "01101.00010.00010.00001.00000|input,conv3x3-bn-relu,conv1x1-bn-relu,maxpool3x3,output"


def test_nb201_labels_and_op_names():
    sample = nb201_arch_to_sample(ARCH)
    assert sample == {"0_1": "conv_3x3", "0_2": "conv_1x1", "1_2": "avg_pool_3x3",
                      "0_3": "skip_connect", "1_3": "none", "2_3": "conv_3x3"}
    assert nb201_sample_to_arch(sample) == ARCH
    # under the hub's scope, and with the labels in any order
    scoped = {f"cell/{k}": v for k, v in reversed(list(sample.items()))}
    assert nb201_arch_to_sample(ARCH, "cell/") == dict(reversed(list(scoped.items())))
    assert nb201_sample_to_arch(scoped) == ARCH


def test_nb201_round_trip_over_the_whole_space():
    space = NASBench201()
    for arch in space:
        assert nb201_sample_to_arch(nb201_arch_to_sample(arch, "cell/")) == arch
    # and sample -> arch -> sample over random samples
    rng = np.random.default_rng(0)
    ops = ["none", "skip_connect", "conv_1x1", "conv_3x3", "avg_pool_3x3"]
    for _ in range(500):
        sample = {label: ops[int(rng.integers(5))] for label in NB201_LABELS}
        assert nb201_arch_to_sample(nb201_sample_to_arch(sample)) == sample


def test_nb201_bad_samples_say_what_is_wrong():
    sample = nb201_arch_to_sample(ARCH)
    with pytest.raises(ArchError, match="unknown NAS-Bench-201 op"):
        nb201_sample_to_arch({**sample, "0_1": "nor_conv_3x3"})
    with pytest.raises(ArchError, match="not a sample of this space"):
        nb201_sample_to_arch({k: v for k, v in sample.items() if k != "2_3"})
    with pytest.raises(ArchError, match="not a sample of this space"):
        nb201_sample_to_arch({"a/0_1": "none", **{f"b/{k}": v for k, v in sample.items() if k != "0_1"}})


def test_nb101_round_trip_both_ways():
    sample = nb101_arch_to_sample(NB101_ARCH)
    assert sample["num_nodes"] == 5
    assert [sample[f"op{i}"] for i in (1, 2, 3)] == ["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"]
    assert [sample[f"input{i}"] for i in (1, 2, 3, 4)] == [[0], [0], [1, 2], [0, 3]]
    assert sample["input5"] == sample["input6"] == []  # beyond the cell: NNI reads nothing there
    assert nb101_sample_to_arch(sample) == NASBench101().canonical(NB101_ARCH)
    space, rng = NASBench101(), np.random.default_rng(1)
    for _ in range(300):
        arch = space.sample(rng)  # canonical (pruned)
        assert nb101_sample_to_arch(nb101_arch_to_sample(arch, "cell/")) == arch
        again = nb101_arch_to_sample(nb101_sample_to_arch(nb101_arch_to_sample(arch)))
        assert again == nb101_arch_to_sample(arch)


def test_nb101_unpruned_sample_maps_to_its_pruned_cell():
    sample = nb101_arch_to_sample(NB101_ARCH)
    # 7 vertices: vertex 4 (maxpool, reads 1) feeds vertex 5, which nothing reads; both are pruned
    big = {**sample, "num_nodes": 7, "op4": "maxpool3x3", "op5": "conv1x1-bn-relu",
           "input4": [1], "input5": [4], "input6": [0, 3]}
    assert nb101_sample_to_arch(big) == NASBench101().canonical(NB101_ARCH)
    with pytest.raises(ArchError, match="reads vertex 3"):
        nb101_sample_to_arch({**sample, "input2": [3]})
    with pytest.raises(ArchError, match="needs op3"):
        nb101_sample_to_arch({k: v for k, v in sample.items() if k != "op3"})


def test_detection_by_labels():
    assert detect_mapping(["cell/" + label for label in NB201_LABELS]) == SampleMapping("nasbench201", "cell/")
    assert detect_mapping(NB201_LABELS) == SampleMapping("nasbench201", "")
    assert detect_mapping(nb101_arch_to_sample(NB101_ARCH, "c/")) == SampleMapping("nasbench101", "c/")
    assert detect_mapping([*nb101_arch_to_sample(NB101_ARCH), "final"]).space_name == "nasbench101"
    assert detect_mapping(["a", "b"]) is None
    assert detect_mapping([*NB201_LABELS, "lr"]) is None
    # NAS-Bench-201 labels with other choices are not NAS-Bench-201
    assert detect_mapping(NB201_LABELS, {label: ["conv_5x5"] for label in NB201_LABELS}) is None
    assert mapping_for_sample({**nb201_arch_to_sample(ARCH), "0_1": "conv_7x7"}) is None
    with pytest.raises(ConfigError, match="not a space this bridge maps"):
        check_space(None, object())


# -- against NNI -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def nni():
    from tests.strategies.nni_support import import_nni

    return import_nni()


def test_nb201_mapping_matches_nni_parser_and_hub_labels(nni):
    from nni.nas.benchmark.nasbench201.db_gen import parse_arch_str
    from nni.nas.hub.pytorch import NasBench201

    from strategies.nni_bridge.mapping import mapping_for_space

    space = NASBench201()
    for i in range(0, len(space), 97):  # NNI's converter of the benchmark's arch strings agrees
        arch = space.arch_from_index(i)
        assert parse_arch_str(arch) == nb201_arch_to_sample(arch)
    hub = NasBench201()
    mapping = mapping_for_space(hub)
    assert mapping == SampleMapping("nasbench201", "cell/")
    assert set(hub.simplify()) == set(nb201_arch_to_sample(ARCH, "cell/"))
    memo: dict = {}
    hub.random(memo=memo, random_state=np.random.RandomState(0))
    assert mapping.to_sample(mapping.to_arch(memo)) == memo
    hub.freeze(mapping.to_sample(ARCH))  # a valid sample of the hub space


def test_nb101_mapping_matches_nni_pruning(nni):
    from nni.mutable import SampleValidationError
    from nni.nas.benchmark import BenchmarkModelSpace, NasBench101Benchmark
    from nni.nas.hub.pytorch import NasBench101

    from strategies.nni_bridge.mapping import mapping_for_space

    space = BenchmarkModelSpace(NasBench101Benchmark())
    mapping = mapping_for_space(space)
    assert mapping == SampleMapping("nasbench101", "")
    assert mapping_for_space(NasBench101()) == SampleMapping("nasbench101", "cell/")
    rng, checked = np.random.RandomState(0), 0
    while checked < 40:
        memo: dict = {}
        try:
            space.random(memo=memo, random_state=rng)
        except SampleValidationError:  # NNI draws cells over 9 edges too, and rejects them
            continue
        arch = mapping.to_arch(memo)
        # NNI's pruned cell ('final') is the cell of our canonical arch string
        final = memo["final"]
        n = len([k for k in final if k.startswith("input")]) + 1
        pruned = {"num_nodes": n, **final}
        assert nb101_sample_to_arch(pruned) == arch
        frozen = space.freeze(mapping.to_sample(arch))  # and our sample of it is a valid NNI sample
        assert frozen.sample["final"] == final
        checked += 1
