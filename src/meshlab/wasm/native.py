"""Crossings between Python and a Wasm module through wasmtime's unchecked C API.

wasmtime-py's ``Func.__call__`` and the trampoline behind ``Linker.define_func`` look the function's
type up again and convert every value through ``Val`` on each call; that costs more than the work a
proxy-wasm host function does, and a request through an AssemblyScript filter crosses about 17 times
(the SDK logs at debug level in every callback). The proxy-wasm ABI passes only i32 and i64 values,
so this module checks a signature once, when a function is defined or first looked up, and then
passes raw values (``wasmtime_val_raw_t``) with ``wasmtime_func_call_unchecked`` and
``wasmtime_linker_define_func_unchecked``: the C functions wasmtime-py itself binds (pinned at
wasmtime 50.0.1 in pyproject.toml).

    Crossings      one store's crossings: host functions defined on a linker, exports called, memory
                   read and written; an exception raised in a host function (the module's proc_exit)
                   comes back out of the export call that led to it, as wasmtime-py does
    Export         one exported function, callable with ints
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import wasmtime
from wasmtime import _ffi as ffi

#: The value types the ABI uses, by the name of their field in a raw value (ValType is not hashable).
FIELDS = (("i32", wasmtime.ValType.i32()), ("i64", wasmtime.ValType.i64()))


def _fields(types: list[wasmtime.ValType]) -> tuple[str, ...]:
    """The raw-value field of each type, or TypeError naming a type the ABI does not use."""
    fields = []
    for kind in types:
        field = next((name for name, known in FIELDS if kind == known), None)
        if field is None:
            raise TypeError(f"raw crossings carry i32 and i64 values only, not {kind}")
        fields.append(field)
    return tuple(fields)


@ctypes.CFUNCTYPE(None, ctypes.c_void_p)
def _keep(_environment: int | None) -> None:
    """wasmtime's finalizer for a host function: nothing to free, Crossings holds the callbacks."""


class Export:
    """An exported function called with raw values: its signature was read once, at lookup."""

    def __init__(self, crossings: Crossings, function: wasmtime.Func) -> None:
        kind = function.type(crossings.store)
        self.crossings, self.function = crossings, function
        self.params, self.results = _fields(kind.params), _fields(kind.results)
        self.slots = max(len(self.params), len(self.results), 1)

    def __call__(self, *args: int) -> int | None:
        """Call with exactly as many ints as the function takes; its one result or None. A trap
        raises wasmtime.Trap, or the exception a host function raised that made it."""
        if len(args) != len(self.params):
            raise TypeError(f"the export takes {len(self.params)} arguments, {len(args)} given")
        values = (ffi.wasmtime_val_raw_t * self.slots)()
        for slot, (field, value) in enumerate(zip(self.params, args)):
            setattr(values[slot], field, value)
        trap = ctypes.POINTER(ffi.wasm_trap_t)()
        error = ffi.wasmtime_func_call_unchecked(self.crossings.store._context(), ctypes.byref(self.function._func),
                                                 values, self.slots, ctypes.byref(trap))
        if error:  # a host function's trap comes back as an error, the module's own as a trap
            self.crossings.fail(wasmtime.WasmtimeError._from_ptr(error))
        if trap:
            self.crossings.fail(wasmtime.Trap._from_ptr(trap))
        return getattr(values[0], self.results[0]) if self.results else None


class Crossings:
    """The raw crossings of one store and the memory the module exports."""

    def __init__(self, store: wasmtime.Store) -> None:
        self.store = store
        self.memory: wasmtime.Memory | None = None
        self.callbacks: list[object] = []  # wasmtime holds raw pointers to these: keep them alive
        self.raised: BaseException | None = None

    def define(self, linker: wasmtime.Linker, namespace: str, name: str, params: list[wasmtime.ValType],
               results: list[wasmtime.ValType], function: Callable[..., int | None]) -> None:
        """Offer ``function`` to the module as ``namespace.name``; it gets the arguments as ints and
        returns the one result (or nothing)."""
        fields, result = _fields(params), (_fields(results) or (None,))[0]

        def callback(_environment: int | None, _caller: object, values: ctypes.Array, _count: int) -> int:
            try:
                answer = function(*[getattr(values[slot], field) for slot, field in enumerate(fields)])
                if result is not None:
                    setattr(values[0], result, answer)
                return 0
            except BaseException as raised:  # noqa: BLE001 - it travels back out of the export call
                self.raised = raised
                return ctypes.cast(wasmtime.Trap(f"host function {name} raised {raised!r}")._consume(),
                                   ctypes.c_void_p).value or 0

        raw = ffi.wasmtime_func_unchecked_callback_t(callback)
        self.callbacks.append(raw)
        kind = wasmtime.FuncType(params, results)
        error = ffi.wasmtime_linker_define_func_unchecked(
            linker.ptr(), namespace.encode(), len(namespace.encode()), name.encode(), len(name.encode()),
            kind.ptr(), raw, None, _keep)
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)

    def fail(self, failure: wasmtime.Trap | wasmtime.WasmtimeError) -> None:
        """Raise what a host function raised, if one did, else the failure wasmtime reported."""
        raised, self.raised = self.raised, None
        if raised is not None:
            raise raised from failure
        raise failure

    def export(self, function: wasmtime.Func) -> Export:
        return Export(self, function)

    def _base(self, pointer: int, size: int) -> int:
        """The address of ``size`` bytes at ``pointer`` in the module's memory, after a bounds check
        (the memory may have grown and moved since the last call)."""
        assert self.memory is not None, "the module's memory is set after instantiation"
        context, memory = self.store._context(), ctypes.byref(self.memory._memory)
        if pointer < 0 or size < 0 or pointer + size > ffi.wasmtime_memory_data_size(context, memory):
            raise IndexError(f"{size} bytes at {pointer} lie outside the module's memory")
        return ctypes.addressof(ffi.wasmtime_memory_data(context, memory).contents) + pointer

    def read(self, pointer: int, size: int) -> bytes:
        return ctypes.string_at(self._base(pointer, size), size)

    def write(self, pointer: int, data: bytes | bytearray) -> None:
        ctypes.memmove(self._base(pointer, len(data)), bytes(data), len(data))
