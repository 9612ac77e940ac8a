"""Observations: what a student's code did, as plain data that a judge in another process reads.

Grading splits every hidden check in two. An observer (`grader/observers/<unit>.py`) runs in the
student's kernel: it calls the student's code on inputs it builds from fixed seeds and records
what came back, as JSON-safe data. A judge (`grader/checks/<unit>.py`) runs in the trusted grading
process: it rebuilds the same inputs with its own, untouched torch, recomputes what the results
should be, and decides. Nothing here decides anything, so nothing a submission does to its own
kernel (patching torch, removing asserts, faking tracebacks) can produce a pass: only data that is
actually right can.

Values travel as JSON; tensors and arrays as raw little-endian bytes in base64 with their dtype
and shape (never pickle, which would run code in the judge).
"""

import base64
import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

# The MIME type of an observation in a notebook cell's outputs.
MIME = "application/vnd.intro-to-pytorch.observation+json"

# The environment variable a grading kernel is started with; the kernel then emits observations
# instead of judging them itself (see grader.autograde.observing).
GRADING_ENV = "NBGRADER_EXECUTION"


def _bytes(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()).decode()


def encode(value: Any) -> Any:
    """`value` as JSON-safe data: tensors, arrays, numbers, strings, lists, tuples and dicts."""
    if isinstance(value, torch.Tensor):
        tensor = torch.Tensor.detach(value).cpu()
        if tensor.dtype == torch.bfloat16 or tensor.dtype == torch.float16:
            array = tensor.to(torch.float32).numpy()
        else:
            array = tensor.resolve_conj().resolve_neg().numpy()
        grad_fn = value.grad_fn
        return {"__tensor__": {
            "dtype": str(value.dtype).removeprefix("torch."), "shape": list(value.shape),
            "device": value.device.type, "requires_grad": bool(value.requires_grad),
            "grad_fn": type(grad_fn).__name__ if grad_fn is not None else None,
            "type": type(value).__qualname__, "data": _bytes(array), "array_dtype": array.dtype.str.lstrip("<>|="),
        }}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            return {"__object__": {"type": "ndarray[object]", "repr": repr(value)[:300]}}
        return {"__ndarray__": {"dtype": value.dtype.str.lstrip("<>|="), "shape": list(value.shape),
                                "data": _bytes(value)}}
    if isinstance(value, np.generic):
        return {"__npscalar__": {"dtype": value.dtype.str.lstrip("<>|="), "value": encode(value.item())}}
    if value is None or isinstance(value, bool | str):
        return value
    if type(value) is int:
        return value
    if type(value) is float:
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if type(value) in (list, tuple):
        return {"__list__" if type(value) is list else "__tuple__": [encode(item) for item in value]}
    if type(value) is dict and all(type(key) is str for key in value):
        return {"__dict__": {key: encode(item) for key, item in value.items()}}
    # Anything else (a subclass of int, an object with a lying __eq__, a module): described, never trusted.
    return {"__object__": {"type": f"{type(value).__module__}.{type(value).__qualname__}",
                           "repr": _safe_repr(value)}}


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)[:300]
    except Exception:  # noqa: BLE001 -- a student's __repr__ may raise
        return "<unprintable>"


class Opaque:
    """Something the student's code returned that is not plain data (described, not rebuilt)."""

    def __init__(self, type_name: str, text: str):
        self.type_name, self.text = type_name, text

    def __repr__(self) -> str:
        return self.text


def decode(data: Any) -> Any:
    """The value `encode` described: tensors come back as CPU tensors with an `.observed` dict
    (device, requires_grad, grad_fn, type) describing the original."""
    if isinstance(data, list):
        return [decode(item) for item in data]  # plain JSON lists (an observer's own records)
    if not isinstance(data, dict):
        return data
    if "__tensor__" in data:
        info = data["__tensor__"]
        array = np.frombuffer(base64.b64decode(info["data"]), dtype=np.dtype(info["array_dtype"]).newbyteorder("<"))
        tensor = torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True)).reshape(info["shape"])
        dtype = getattr(torch, info["dtype"], None)
        if isinstance(dtype, torch.dtype) and dtype != tensor.dtype:
            tensor = tensor.to(dtype)
        tensor.observed = {key: info[key] for key in ("device", "requires_grad", "grad_fn", "type")}
        return tensor
    if "__ndarray__" in data:
        info = data["__ndarray__"]
        array = np.frombuffer(base64.b64decode(info["data"]), dtype=np.dtype(info["dtype"]).newbyteorder("<"))
        return array.astype(array.dtype.newbyteorder("="), copy=True).reshape(info["shape"])
    if "__npscalar__" in data:
        info = data["__npscalar__"]
        return np.dtype(info["dtype"]).type(decode(info["value"]))
    if "__float__" in data:
        return float(data["__float__"])
    if "__list__" in data:
        return [decode(item) for item in data["__list__"]]
    if "__tuple__" in data:
        return tuple(decode(item) for item in data["__tuple__"])
    if "__dict__" in data:
        return {key: decode(item) for key, item in data["__dict__"].items()}
    if "__object__" in data:
        return Opaque(data["__object__"]["type"], data["__object__"]["repr"])
    return {key: decode(item) for key, item in data.items()}  # an observer's own record


def capture(function: Callable, *args: Any, **kwargs: Any) -> dict:
    """Call the student's `function`: {"value": encoded result} or {"raised": [type, message]}.

    NotImplementedError passes through: an unsolved stub stops the check, as it always did."""
    try:
        result = function(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as error:  # noqa: BLE001 -- any error in student code is recorded, not crashed on
        return {"raised": [type(error).__name__, str(error)[:500]]}
    return {"value": encode(result)}


def as_json(observation: Any) -> str:
    """The observation as the JSON the judge will read (no NaN: strict JSON)."""
    return json.dumps(observation, allow_nan=False)
