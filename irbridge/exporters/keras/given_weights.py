"""What the Keras builder hands a new layer: its weights as initializers (`GivenWeights`), and
why a node could not be built (`build_failure`)."""

from __future__ import annotations

import numpy as np

# the integer operands that set a layer's form (axes, shapes, counts), by op: Keras needs them fixed
_PARAMETERS = {"Reshape": (1,), "Expand": (1,), "Tile": (1,), "Split": (1,), "Squeeze": (1,), "Unsqueeze": (1,),
               "Slice": (1, 2, 3, 4), "Pad": (1, 3), "Resize": (1, 2, 3), "Upsample": (1,), "ConstantOfShape": (0,),
               "TopK": (1,), "OneHot": (1,), "CumSum": (1,), "Range": (0, 1, 2), "Trilu": (1,)}


def build_failure(ctx, e: Exception, said: str) -> str:
    """Why Keras could not build a node: most often an integer operand (axes, shape, repeats,
    split sizes) computed at run time where a Keras layer or keras.ops needs a constant."""
    op = ctx.node.op_type
    places = _PARAMETERS.get(op, (1,) if op.startswith("Reduce") else ())
    runtime = [f"input {i} {v.name!r}" for i, v in enumerate(ctx.node.inputs)
               if i in places and v is not None and ctx.const(i) is None]
    if runtime:
        return (f"its {', '.join(runtime)} {'is' if len(runtime) == 1 else 'are'} computed at run time, where "
                f"the Keras export needs a constant: fold it into the source graph (Keras said: {said[:80]})")
    return f"Keras cannot build it: {said}"


class GivenWeights:
    """An initializer that returns the given arrays in turn (zeros once they do not fit)."""

    def __init__(self, arrays):
        self.arrays, self.next, self.fitted = arrays, 0, True

    def __call__(self, shape, dtype=None):
        if self.next < len(self.arrays) and tuple(self.arrays[self.next].shape) == tuple(shape):
            self.next += 1
            a = self.arrays[self.next - 1]
            return a if dtype is None else a.astype(str(getattr(dtype, "name", dtype)), copy=False)
        self.fitted = False
        return np.zeros(shape, dtype="float32" if dtype is None else str(getattr(dtype, "name", dtype)))

    def all_used(self, count: int) -> bool:
        return self.fitted and self.next == len(self.arrays) == count


def initializer_defaults(cls, kwargs) -> dict:
    """{`*_initializer` argument of cls not given in kwargs: its default}."""
    import inspect

    try:
        params = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):
        return {}
    return {k: p.default for k, p in params.items()
            if k.endswith("_initializer") and k not in kwargs and p.default is not inspect.Parameter.empty}
