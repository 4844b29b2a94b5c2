"""nas_predictor.lazy: the PEP 562 attributes every package shares."""

import pytest

from nas_predictor.lazy import lazy_exports


def test_a_name_is_imported_on_first_access_then_kept_as_a_plain_attribute():
    namespace: dict = {}
    getattr_, dir_ = lazy_exports("pkg", {"sqrt": "math"}, namespace)
    assert "sqrt" in dir_() and "sqrt" not in namespace
    assert getattr_("sqrt")(9.0) == 3.0
    assert "sqrt" in namespace  # the next access is a plain module attribute, no __getattr__ call


def test_an_unknown_name_is_an_attribute_error_naming_the_package():
    getattr_, _ = lazy_exports("pkg", {"sqrt": "math"}, {})
    with pytest.raises(AttributeError, match=r"module 'pkg' has no attribute 'nope'"):
        getattr_("nope")


def test_the_packages_keep_their_public_names():
    import search_spaces
    import strategies
    from search_spaces import cnn_families

    assert strategies.run_search.__module__ == "strategies.runner"
    assert search_spaces.SearchSpace.__module__ == "nas_predictor.spaces"
    assert "FAMILIES" in dir(cnn_families) and callable(cnn_families.generate)
    with pytest.raises(AttributeError, match="'strategies' has no attribute"):
        strategies.no_such_name  # noqa: B018
