"""meshlab.wasm.native: raw crossings into and out of a module, checked on small WAT modules."""

from __future__ import annotations

import pytest
import wasmtime

from meshlab.wasm.host import new_engine
from meshlab.wasm.native import Crossings

I32, I64, F32 = wasmtime.ValType.i32(), wasmtime.ValType.i64(), wasmtime.ValType.f32()

MODULE = """
(module
  (import "env" "twice" (func $twice (param i32) (result i32)))
  (import "env" "wide" (func $wide (param i64)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello")
  (func (export "call_twice") (param i32) (result i32) (call $twice (local.get 0)))
  (func (export "call_wide") (param i64) (call $wide (local.get 0)))
  (func (export "crash") unreachable))
"""


def instantiate(twice, wide=lambda value: None):  # type: ignore[no-untyped-def]
    engine = new_engine()
    store = wasmtime.Store(engine)
    crossings = Crossings(store)
    linker = wasmtime.Linker(engine)
    crossings.define(linker, "env", "twice", [I32], [I32], twice)
    crossings.define(linker, "env", "wide", [I64], [], wide)
    instance = linker.instantiate(store, wasmtime.Module(engine, MODULE))
    exports = instance.exports(store)
    crossings.memory = exports["memory"]
    return crossings, {name: crossings.export(exports[name]) for name in ("call_twice", "call_wide", "crash")}


def test_values_cross_both_ways_raw() -> None:
    seen: list[int] = []
    crossings, exports = instantiate(lambda value: value * 2, seen.append)
    assert exports["call_twice"](21) == 42
    assert exports["call_twice"](-5) == -10  # i32 values are signed, as wasmtime-py gives them
    assert exports["call_wide"](1 << 40) is None and seen == [1 << 40]


def test_memory_is_read_and_written_within_bounds_only() -> None:
    crossings, _ = instantiate(lambda value: value)
    assert crossings.read(16, 5) == b"hello"
    crossings.write(16, b"HE")
    assert crossings.read(16, 5) == b"HEllo"
    page = 65536
    for pointer, size in ((page - 2, 3), (-1, 1), (0, -1)):
        with pytest.raises(IndexError, match="outside the module's memory"):
            crossings.read(pointer, size)
    with pytest.raises(IndexError):
        crossings.write(page - 1, b"ab")


def test_a_host_functions_exception_comes_out_of_the_export_call() -> None:
    class Exit(Exception):
        pass

    def twice(value: int) -> int:
        raise Exit(value)

    crossings, exports = instantiate(twice)
    with pytest.raises(Exit) as caught:
        exports["call_twice"](7)
    assert caught.value.args == (7,) and crossings.raised is None  # handed over once, not kept
    assert exports["call_wide"](1) is None  # the store is still usable


def test_a_trap_in_the_module_is_a_wasmtime_trap() -> None:
    _, exports = instantiate(lambda value: value)
    with pytest.raises(wasmtime.Trap, match="unreachable"):
        exports["crash"]()


def test_bad_signatures_and_arity_are_refused_by_name() -> None:
    crossings, exports = instantiate(lambda value: value)
    with pytest.raises(TypeError, match="takes 1 arguments, 2 given"):
        exports["call_twice"](1, 2)
    with pytest.raises(TypeError, match="i32 and i64 values only, not f32"):
        crossings.define(wasmtime.Linker(new_engine()), "env", "float", [F32], [], lambda value: None)
