"""Search strategies (random, regularized evolution, Optuna TPE, predictor-guided, NNI adapter).

Nothing lives here yet: the predictor slice (issue 2) comes first; searches build on it.
"""
