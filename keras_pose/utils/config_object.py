"""`ConfigObject`: the shared plumbing of plain settings objects with a config.

Codecs, croppers and resizers are plain Python objects described entirely by
their ``get_config()`` (the constructor's keyword arguments). This base gives
them `from_config`, equality and hashing by config, and a readable repr.
"""


class ConfigObject:
    """Base of plain objects rebuilt from ``get_config()`` (the constructor's keyword arguments)."""

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, repr(self)))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
