"""runner: executes one training trial. Knows nothing of the search side; talks through a Reporter.

Names are resolved lazily so that `import runner.config` (used to validate search spaces)
does not pay for importing torch and transformers.
"""

from importlib import import_module

_EXPORTS = {
    "TrialConfig": "runner.config",
    "config_from_dict": "runner.config",
    "load_config": "runner.config",
    "CheckpointError": "runner.errors",
    "ConfigError": "runner.errors",
    "DataError": "runner.errors",
    "UserInputError": "runner.errors",
    "run_trial": "runner.loop",
    "NullReporter": "runner.reporting",
    "Reporter": "runner.reporting",
    "TrialResult": "runner.result",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'runner' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
