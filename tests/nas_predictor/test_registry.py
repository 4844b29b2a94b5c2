import pytest

from nas_predictor.errors import ConfigError, DataError
from nas_predictor.registry import Registry


def test_a_registry_builds_by_name_and_names_the_known_ones_when_asked_for_another():
    reg: Registry[int] = Registry("thing")
    reg.add("latency-cpu", 1)

    @reg.register("latency-gpu")
    def gpu():
        return 2

    assert reg.get("latency-cpu") == 1 and reg.get("latency-gpu")() == 2
    assert reg.names() == ["latency-cpu", "latency-gpu"] and reg.names("*gpu") == ["latency-gpu"]
    assert "latency-cpu" in reg and len(reg) == 2 and list(reg) == reg.names()
    with pytest.raises(ConfigError, match=r"^unknown thing 'x'; choose from latency-cpu, latency-gpu$"):
        reg.get("x")
    with pytest.raises(ConfigError, match="unknown thing"):
        reg.get(["unhashable"])
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("latency-cpu", 3)
    with pytest.raises(DataError):
        Registry("space", DataError).get("x")


def test_the_registries_match_the_names_users_are_offered():
    from nas_predictor.architectures import ARCHITECTURES, build_model
    from nas_predictor.data.latency_tables import HELP_ARCHS, HELP_FOLDERS
    from nas_predictor.model import NARFormerV2
    from nas_predictor.model_config import ModelConfig
    from strategies.names import STRATEGIES
    from strategies.runner import STRATEGY_BUILDERS, make_strategy

    assert tuple(STRATEGY_BUILDERS.names()) == STRATEGIES
    assert set(HELP_ARCHS.names()) == set(HELP_FOLDERS)
    assert set(ARCHITECTURES.names()) == set(ModelConfig.model_fields["architecture"].annotation.__args__)
    assert type(build_model(ModelConfig(hidden=8, groups=2, num_blocks=1, input_dim=8, static_dim=0))) is NARFormerV2
    with pytest.raises(ConfigError, match="unknown strategy 'x'; choose from random, evolution, tpe, predictor"):
        make_strategy("x")
    with pytest.raises(ConfigError, match="random search has no predictor-guided variant"):
        make_strategy("random", guided=True)
    assert make_strategy("evolution", guided=True).guided
