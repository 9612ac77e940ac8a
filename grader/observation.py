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


# Shapes: what an observer declares its observation looks like ------------------------------------
#
# A student's kernel can publish any JSON under the observation MIME type, so the trusted process reads
# every observation against its observer's declared shape (`read`) before a judge sees it: a judge can then
# index and unpack what the shape promises without guarding each step. A shape is written with:
#
#   str, int, float, bool       a JSON string, an integer, a number (an integer too), a boolean (never 0 or 1)
#   None, "cpu", True           exactly that value (null, that string, that boolean)
#   {"name": shape, ...}        an object with exactly these fields; `OrMissing(shape)` marks one that may be absent
#   [shape]                     a list of any length
#   ListOf(shape, length=n)     a list of exactly n (or `at_least`/`at_most`) items, e.g. one per input case
#   (shape, shape, ...)         a list of exactly these items, one shape each
#   DictOf(shape)               an object with any string keys, every value of `shape`
#   OneOf(shape, shape, ...)    any one of them
#   ENCODED                     a value as `encode` wrote it
#   CALL                        what `capture` returned: {"value": ENCODED} or {"raised": [type, message]}


class MalformedObservation(ValueError):
    """An observation that does not have its observer's declared shape; the message names where."""

    # How well the data fitted where reading stopped, for OneOf to report the alternative that fitted furthest: at
    # the same depth, a wrong value counts for more than a missing or unknown field, and that for more than another
    # value where the shape names one (a literal such as {"event": "step"} says which alternative is meant).
    OTHER_LITERAL, FIELDS, VALUE = range(3)

    def __init__(self, path: str, problem: str, fit: int = VALUE):
        super().__init__(f"{path or 'the observation'} {problem}")
        self.reach = (path.count(".") + path.count("[") + bool(path), fit)


class OrMissing:
    """As a field of an object: the field may be absent; when present it has `shape`."""

    def __init__(self, shape: Any):
        self.shape = shape


class ListOf:
    """A list of items of `shape`: exactly `length` of them, or between `at_least` and `at_most`."""

    def __init__(self, shape: Any, length: int | None = None, at_least: int = 0, at_most: int | None = None):
        self.shape = shape
        self.at_least, self.at_most = (length, length) if length is not None else (at_least, at_most)


class DictOf:
    """An object with any string keys, each value of `shape` (a recorded layer's parameters, say)."""

    def __init__(self, shape: Any):
        self.shape = shape


class OneOf:
    """Any one of `shapes` (an observation that stops early has fewer fields, say)."""

    def __init__(self, *shapes: Any):
        self.shapes = shapes


class _Encoded:
    """A value as `encode` wrote it; its tensors and arrays hold exactly the bytes their dtype and shape need,
    so `decode` cannot fail on it."""


ENCODED = _Encoded()
RAISED = {"raised": (str, str)}
CALL = OneOf({"value": ENCODED}, RAISED)


def call_with(**fields: Any) -> OneOf:
    """A captured call (`CALL`) that the observer added `fields` to."""
    return OneOf({"value": ENCODED, **fields}, {**RAISED, **fields})


def observes(shape: Any) -> Callable[[Callable], Callable]:
    """Declare the shape of what an observer returns (read by `grader.checks.report.judged`)."""

    def declare(observe: Callable) -> Callable:
        observe.shape = shape
        return observe

    return declare


def read(shape: Any, data: Any) -> Any:
    """`data` itself if it has `shape`, else MalformedObservation naming the first place that does not."""
    _read(shape, data, "")
    return data


def _at(path: str, key: Any) -> str:
    return f"{path}[{key}]" if isinstance(key, int) else f"{path}.{key}" if path else key


_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
               float: "a number", type(None): "null"}


def _json_type(data: Any) -> str:
    return _JSON_TYPES.get(type(data), type(data).__name__)


def _read(shape: Any, data: Any, path: str) -> None:
    if shape in (str, bool, int, float):
        # JSON has one kind of number: an integer is a float's fine value, a boolean is neither.
        if not (type(data) is shape or (shape is float and type(data) is int)):
            raise MalformedObservation(path, f"should be {_JSON_TYPES[shape]}, not {_json_type(data)}")
    elif shape is None or isinstance(shape, bool | str):
        if type(data) is not type(shape) or data != shape:
            raise MalformedObservation(path, f"should be {json.dumps(shape)}, not {json.dumps(data)[:40]}",
                                       MalformedObservation.OTHER_LITERAL)
    elif isinstance(shape, dict):
        _read_fields(shape, data, path)
    elif isinstance(shape, list):
        _read(ListOf(shape[0]), data, path)
    elif isinstance(shape, tuple):
        _read_list(data, path, len(shape), len(shape))
        for index, (item_shape, item) in enumerate(zip(shape, data, strict=True)):
            _read(item_shape, item, _at(path, index))
    elif isinstance(shape, ListOf):
        _read_list(data, path, shape.at_least, shape.at_most)
        for index, item in enumerate(data):
            _read(shape.shape, item, _at(path, index))
    elif isinstance(shape, DictOf):
        if not isinstance(data, dict):
            raise MalformedObservation(path, f"should be an object, not {_json_type(data)}")
        for key, item in data.items():
            _read(shape.shape, item, _at(path, key))
    elif isinstance(shape, OneOf):
        _read_one_of(shape.shapes, data, path)
    elif shape is ENCODED:
        _read_encoded(data, path)
    else:
        raise TypeError(f"not a shape: {shape!r}")


def _read_fields(fields: dict, data: Any, path: str) -> None:
    if not isinstance(data, dict):
        raise MalformedObservation(path, f"should be an object, not {_json_type(data)}")
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise MalformedObservation(_at(path, unknown[0]), "is not a field this observation has",
                                   MalformedObservation.FIELDS)
    for name, shape in fields.items():
        if isinstance(shape, OrMissing):
            if name in data:
                _read(shape.shape, data[name], _at(path, name))
        elif name not in data:
            raise MalformedObservation(_at(path, name), "is missing", MalformedObservation.FIELDS)
        else:
            _read(shape, data[name], _at(path, name))


def _read_list(data: Any, path: str, at_least: int, at_most: int | None) -> None:
    if not isinstance(data, list):
        raise MalformedObservation(path, f"should be a list, not {_json_type(data)}")
    if len(data) < at_least or (at_most is not None and len(data) > at_most):
        wanted = f"{at_least}" if at_least == at_most else f"at least {at_least}" if at_most is None else (
            f"{at_least} to {at_most}")
        raise MalformedObservation(path, f"should hold {wanted} items, not {len(data)}")


def _read_one_of(shapes: tuple, data: Any, path: str) -> None:
    """The first shape that fits; else the complaint of the alternative that fitted furthest."""
    problems = []
    for shape in shapes:
        try:
            _read(shape, data, path)
            return
        except MalformedObservation as problem:
            problems.append(problem)
    raise max(problems, key=lambda problem: problem.reach)


# The numeric dtypes an encoded tensor or array may have: bool, signed and unsigned ints, floats, complex.
_NUMERIC_KINDS = "biufc"
_TENSOR_FIELDS = {"dtype": str, "shape": [int], "device": str, "requires_grad": bool, "grad_fn": OneOf(str, None),
                  "type": str, "data": str, "array_dtype": str}
_ARRAY_FIELDS = {"dtype": str, "shape": [int], "data": str}
_NPSCALAR_FIELDS = {"dtype": str, "value": OneOf(int, float, bool, {"__float__": str})}
_OBJECT_FIELDS = {"type": str, "repr": str}


def _read_encoded(data: Any, path: str) -> None:
    if data is None or type(data) in (bool, str, int, float):
        return
    if not (isinstance(data, dict) and len(data) == 1):
        raise MalformedObservation(path, f"should be an encoded value, not {_json_type(data)}")
    (tag, info), inner = next(iter(data.items())), _at(path, next(iter(data)))
    if tag == "__tensor__" or tag == "__ndarray__":
        _read_fields(_TENSOR_FIELDS if tag == "__tensor__" else _ARRAY_FIELDS, info, inner)
        _read_bytes(info, info["array_dtype" if tag == "__tensor__" else "dtype"], inner)
    elif tag == "__npscalar__":
        _read_fields(_NPSCALAR_FIELDS, info, inner)
        _numeric_dtype(info["dtype"], _at(inner, "dtype"))
        if isinstance(info["value"], dict):
            _read_encoded(info["value"], _at(inner, "value"))
    elif tag == "__float__":
        _read(str, info, inner)
        try:
            float(info)
        except ValueError:
            raise MalformedObservation(inner, "is not a number") from None
    elif tag == "__list__" or tag == "__tuple__":
        _read_list(info, inner, 0, None)
        for index, item in enumerate(info):
            _read_encoded(item, _at(inner, index))
    elif tag == "__dict__":
        _read(DictOf(ENCODED), info, inner)
    elif tag == "__object__":
        _read_fields(_OBJECT_FIELDS, info, inner)
    else:
        raise MalformedObservation(path, f"has an unknown encoding {tag!r}")


def _numeric_dtype(name: str, path: str) -> np.dtype:
    try:
        dtype = np.dtype(name)
    except TypeError:
        raise MalformedObservation(path, f"names no dtype: {name[:40]!r}") from None
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise MalformedObservation(path, f"is not a numeric dtype: {name[:40]!r}")
    return dtype


def _read_bytes(info: dict, dtype_name: str, path: str) -> None:
    """The data holds exactly the bytes of `shape` elements of its dtype."""
    dtype = _numeric_dtype(dtype_name, _at(path, "array_dtype" if "array_dtype" in info else "dtype"))
    if any(size < 0 for size in info["shape"]):
        raise MalformedObservation(_at(path, "shape"), "has a negative size")
    try:
        size = len(base64.b64decode(info["data"], validate=True))
    except ValueError:
        raise MalformedObservation(_at(path, "data"), "is not base64") from None
    if size != math.prod(info["shape"]) * dtype.itemsize:
        raise MalformedObservation(_at(path, "data"), f"holds {size} bytes, not the {math.prod(info['shape'])} "
                                   f"elements of {dtype_name} its shape says")
