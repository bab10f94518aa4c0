"""Plain-function objectives that tests hand to `hpo search --objective tests.hpo.search_objectives:NAME`."""


def quadratic(params, reporter):
    """Minimum 0 at learning_rate 1e-3, weight_decay anywhere."""
    import math

    return (math.log10(params["train.learning_rate"]) + 3) ** 2


def always_fails(params, reporter):
    raise RuntimeError(f"diverged at lr {params['train.learning_rate']:.2g}")
