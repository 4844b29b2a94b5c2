from pathlib import Path

import pytest

from nas_predictor.config import load_config
from nas_predictor.errors import ConfigError

# predictor configs (search_*.yaml are search configs, validated in tests/strategies/test_runner.py)
CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[2] / "configs").glob("*.yaml")
                 if not p.name.startswith("search_"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_shipped_configs_validate(path):
    cfg = load_config(path)
    assert cfg.model.task == ("latency" if path.name.startswith("latency_") else "accuracy")


def test_shipped_configs_exist():
    names = {p.name for p in CONFIGS}
    assert {"nb201_accuracy_781.yaml", "nb201_accuracy_1563.yaml"} <= names


def test_paper_training_set_sizes():
    root = CONFIGS[0].parent
    assert load_config(root / "nb201_accuracy_781.yaml").data.n_train == 781
    assert load_config(root / "nb201_accuracy_1563.yaml").data.n_train == 1563


def test_unknown_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: 3\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match="unknown config key 'train.learning_rate'"):
        load_config(path)


def test_bad_value_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  epochs: -1\n")
    with pytest.raises(ConfigError, match="'train.epochs'.*-1"):
        load_config(path)


def test_overrides_are_applied_and_validated():
    cfg = load_config(None, ["train.epochs=7", "model.hidden=64", "encoding.variant=trans"])
    assert (cfg.train.epochs, cfg.model.hidden, cfg.encoding.variant) == (7, 64, "trans")
    with pytest.raises(ConfigError, match="unknown config key 'train.epoch'"):
        load_config(None, ["train.epoch=7"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["train.epochs"])
    with pytest.raises(ConfigError, match="variant must be one of"):
        load_config(None, ["encoding.variant=fourier"])


def test_input_dim_must_match_encoding():
    with pytest.raises(ConfigError, match="input_dim"):
        load_config(None, ["encoding.num_freqs=16"])


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(listy)


def test_predict_section_is_validated():
    assert load_config(None).predict.average_equivalent is False
    assert load_config(None, ["predict.average_equivalent=true"]).predict.average_equivalent is True
    with pytest.raises(ConfigError, match="predict.average_equivalent"):
        load_config(None, ["predict.average_equivalent=sometimes"])
    with pytest.raises(ConfigError, match="unknown config key 'predict.average'"):
        load_config(None, ["predict.average=true"])



def test_latency_config_sizes_tokens_for_node_costs_and_rejects_them_on_the_reference_layout():
    from nas_predictor.network_encoding import NetworkTokenizer

    path = CONFIGS[0].parent / "latency_in_domain_b1.yaml"
    cfg = load_config(path, ["encoding.node_costs=true"])
    assert cfg.model.input_dim == NetworkTokenizer("extended", node_costs=True).token_dim
    with pytest.raises(ConfigError, match="node_costs needs layout 'extended'"):
        load_config(path, ["encoding.node_costs=true", "encoding.layout=reference"])


def test_latency_config_sizes_tokens_for_channel_alignment():
    from nas_predictor.network_encoding import ALIGNMENT_DIM, NetworkTokenizer

    path = CONFIGS[0].parent / "latency_in_domain_b1.yaml"
    cfg = load_config(path, ["encoding.node_costs=true", "encoding.channel_alignment=true"])
    assert cfg.model.input_dim == NetworkTokenizer("extended", True).token_dim + ALIGNMENT_DIM
    assert cfg.encoding.tokenizer().token_dim == cfg.model.input_dim
    with pytest.raises(ConfigError, match="channel_alignment needs layout 'extended'"):
        load_config(path, ["encoding.node_costs=false", "encoding.channel_alignment=true", "encoding.layout=reference"])


def test_latency_config_sizes_tokens_and_op_slots_for_op_groups():
    from nas_predictor.network_encoding import OP_GROUPS, NetworkTokenizer

    path = CONFIGS[0].parent / "latency_in_domain_b1.yaml"
    cfg = load_config(path, ["encoding.node_costs=true", "encoding.op_groups=true", "model.op_dropout=0.2"])
    plain = NetworkTokenizer("extended", True)
    assert cfg.model.input_dim == plain.token_dim + len(OP_GROUPS) == cfg.encoding.tokenizer().token_dim
    assert cfg.model.op_slots == plain.num_slots
    assert load_config(path, ["encoding.node_costs=true"]).model.op_slots == 0
    with pytest.raises(ConfigError, match="op_dropout needs encoding.op_groups"):
        load_config(path, ["model.op_dropout=0.2"])
    with pytest.raises(ConfigError, match="op_slots"):
        load_config(path, ["encoding.op_groups=true", "model.op_slots=3"])


def test_latency_config_fills_the_cost_column_for_the_roofline_readout():
    path = CONFIGS[0].parent / "latency_in_domain_b1.yaml"
    cfg = load_config(path, ["encoding.node_costs=true", "model.readout=roofline"])
    assert cfg.model.cost_offset == cfg.encoding.tokenizer().cost_offset > 0
    assert load_config(path, ["encoding.node_costs=false"]).model.cost_offset == 0
    with pytest.raises(ConfigError, match="roofline.*node_costs"):
        load_config(path, ["encoding.node_costs=false", "model.readout=roofline"])
    with pytest.raises(ConfigError, match="cost_offset"):
        load_config(path, ["encoding.node_costs=true", "model.cost_offset=5"])


def test_set_with_broken_yaml_is_one_line_naming_the_key():
    with pytest.raises(ConfigError, match=r"--set key: the value '\[1' is not valid YAML \(expected ',' or "
                                          r"'\]', but got '<stream end>' at column 3\)") as err:
        load_config(None, ["key=[1"])
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="the key must be dotted names"):
        load_config(None, ["train..epochs=3"])


@pytest.mark.parametrize("override, key", [("train.lr=.nan", "train.lr"), ("train.lr=.inf", "train.lr"),
                                           ("data.label_scale=.inf", "data.label_scale"),
                                           ("train.seed=-1", "train.seed"), ("data.split_seed=-2", "data.split_seed")])
def test_non_finite_numbers_and_negative_seeds_are_refused_by_name(override, key):
    with pytest.raises(ConfigError, match=f"config key '{key}'"):
        load_config(None, [override])


def test_a_folder_or_binary_file_as_config_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="is a folder, not a YAML file"):
        load_config(tmp_path)
    (tmp_path / "b.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "b.yaml")


def test_retired_curve_every_is_dropped_from_stored_configs_and_points_to_the_benchmark():
    import warnings

    from nas_predictor.config import ExperimentConfig, validate_config

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a stored "off" is silent, and the configs that had it dropped it
        stored = validate_config({"train": {"epochs": 3, "curve_every": 0}})
        for name in ("nb201_accuracy_781", "nb201_accuracy_1563", "nb201_accuracy_781_2x120"):
            load_config(CONFIGS[0].parent / f"{name}.yaml")
    assert stored == ExperimentConfig(train={"epochs": 3}) and "curve_every" not in stored.train.model_dump()
    # checkpoints and results files of runs that recorded curves still load; a config asking for curves
    # is told where they went
    with pytest.warns(UserWarning, match="--curve-every"):
        asked = load_config(None, ["train.curve_every=20"])
    assert asked == load_config(None)
