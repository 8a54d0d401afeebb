"""Fast weight initialisation on the JAX backend.

On JAX every call of a random initialiser compiles one XLA program for its
weight shape, and XLA:CPU's LLVM optimisation of `jax.random`'s samplers is
slow and erratic: with jax 0.10.2, `HeNormal` of a (3, 3, 8, 12) kernel took
21.5 s to compile, (3, 3, 4, 8) 5.9 s, (1, 1, 12, 8) 0.8 s. Building RTMO-s
took 24 s, and the small Hourglass of the backend smoke test 41 s, almost
all of it compiling initialisers (every distinct shape compiles again),
before a preset's weights replace those values anyway.

While `fast_initialization()` is active, a new variable's initialiser runs
as one jitted program compiled at XLA's backend optimisation level 0
(0.37 s for the kernel above): the same initialiser, seed and distribution;
the values equal Keras' own within float rounding (4e-8 on that HeNormal
kernel, |values| up to 0.38), since only the code generation differs.
Initialisers holding a `SeedGenerator` (whose state changes at every draw)
keep Keras' own path. On TensorFlow and PyTorch it does nothing.

Every keras-pose backbone and task constructor runs inside it
(`fast_init_constructor`), so `from_preset`, `from_config` and direct
construction all benefit.
"""

import contextlib
import copy
import functools
import inspect
import json
import threading

import keras
from keras.src.initializers.random_initializers import RandomInitializer
from keras.src.random.seed_generator import draw_seed

_OPTIMIZATION_LEVEL_0 = {"xla_backend_optimization_level": 0}
_lock = threading.Lock()
_depth = 0  # open `fast_initialization` blocks
_original = None  # Keras' own Variable._initialize_with_initializer while patched


class _TracedSeed(keras.random.SeedGenerator):
    """A stand-in seed whose draw is a given (traced) seed tensor; no state variable is created."""

    def __init__(self, value):  # noqa: super().__init__ would create a state variable
        self._value = value

    def next(self, ordered=True):
        return self._value


def _cache_key(initializer, shape, dtype):
    """What the drawn values depend on besides the seed; None when the initialiser is not a seeded
    `RandomInitializer` with an int seed (those keep Keras' own path)."""
    if not isinstance(initializer, RandomInitializer) or not isinstance(initializer.seed, int):
        return None
    try:
        config = {k: v for k, v in initializer.get_config().items() if k != "seed"}
        return type(initializer), json.dumps(config, sort_keys=True), tuple(shape), str(dtype)
    except (TypeError, ValueError, NotImplementedError):
        return None


_programs = {}  # cache key -> jitted (seed pair -> values)


def _program(key, initializer):
    if key not in _programs:
        import jax

        shape, dtype = key[2], key[3]

        def sample(seed):
            traced = copy.copy(initializer)
            traced.seed = _TracedSeed(seed)
            return traced(shape, dtype=dtype)

        _programs[key] = jax.jit(sample, compiler_options=_OPTIMIZATION_LEVEL_0)
    return _programs[key]


def _fast_initialize(original):
    def initialize_with_initializer(variable, initializer):
        key = _cache_key(initializer, variable._shape, variable._dtype)
        if key is None:
            return original(variable, initializer)
        value = _program(key, initializer)(draw_seed(initializer.seed))
        variable._initialize(variable._convert_to_tensor(value))

    return initialize_with_initializer


@contextlib.contextmanager
def fast_initialization():
    """Within this block, new variables' initialisers compile at XLA optimisation level 0 (JAX only).

    Re-entrant (also across threads: the patch stays while any block is open); a no-op on the other backends.
    """
    if keras.backend.backend() != "jax":
        yield
        return
    from keras.src.backend.common import variables

    global _depth, _original
    with _lock:
        if _depth == 0:
            _original = variables.Variable._initialize_with_initializer
            variables.Variable._initialize_with_initializer = _fast_initialize(_original)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                variables.Variable._initialize_with_initializer = _original


def fast_init_constructor(init):
    """Decorate a model's ``__init__`` so that the layers it builds initialise through `fast_initialization`."""

    @functools.wraps(init)
    def wrapped(self, *args, **kwargs):
        with fast_initialization():
            return init(self, *args, **kwargs)

    # Keras' auto-config reads the constructor with inspect.getfullargspec, which ignores
    # __wrapped__ but honours __signature__.
    wrapped.__signature__ = inspect.signature(init)
    return wrapped


__all__ = ["fast_init_constructor", "fast_initialization"]
