"""Hessian 2.0 serialization: enough to walk a Dubbo request body and to rewrite its attachments.

Hessian values carry no outer length, so the only way past a Dubbo call's arguments to the
attachments map at its end is to parse every argument: ``Decoder.value`` reads one value of any type
(null, booleans, the compact and full ints, longs and doubles, dates, chunked strings and binaries,
typed and untyped lists and maps, class definitions and objects, references) and returns it as
Python data. Strings count *characters* (UTF-16 units, as Java does), not bytes.

``encode_string`` and ``encode_map`` write what a mutated attachments map needs.

    HessianError   malformed or truncated input (``truncated`` tells them apart)
    JavaObject     an object instance: its class name and fields
    Decoder        value() reads the next value; position says where it ended
    encode_string, encode_map
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field


class HessianError(ValueError):
    """Input that is not valid Hessian 2; ``truncated`` is True when more bytes could still make it valid."""

    def __init__(self, message: str, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated


@dataclass
class JavaObject:
    type: str
    fields: dict = field(default_factory=dict)


MAX_DEPTH = 64


class Decoder:
    def __init__(self, data: bytes, position: int = 0) -> None:
        self.data, self.position = data, position
        self.classes: list[tuple[str, list[str]]] = []
        self.types: list[str] = []
        self.refs: list = []

    # -- bytes ------------------------------------------------------------------------------------
    def take(self, count: int) -> bytes:
        end = self.position + count
        if end > len(self.data):
            raise HessianError("hessian2: truncated value", truncated=True)
        chunk = self.data[self.position:end]
        self.position = end
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def unpack(self, fmt: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    # -- values -----------------------------------------------------------------------------------
    def value(self, depth: int = 0):
        if depth > MAX_DEPTH:
            raise HessianError(f"hessian2: values nested deeper than {MAX_DEPTH}")
        code = self.byte()
        if code == 0x4E:
            return None
        if code in (0x54, 0x46):
            return code == 0x54
        number = self._number(code)
        if number is not None:
            return number[0]
        if code <= 0x1F or 0x30 <= code <= 0x33 or code in (0x52, 0x53):
            return self._string(code)
        if 0x20 <= code <= 0x2F or 0x34 <= code <= 0x37 or code in (0x41, 0x42):
            return self._binary(code)
        if code == 0x4A:
            return self.unpack(">q")  # date: milliseconds since the epoch
        if code == 0x4B:
            return self.unpack(">i") * 60_000  # compact date: minutes
        if code in (0x48, 0x4D):
            return self._map(code, depth)
        if 0x55 <= code <= 0x58 or 0x70 <= code <= 0x7F:
            return self._list(code, depth)
        if code == 0x43:
            self._class_definition(depth)
            return self.value(depth + 1)
        if code == 0x4F or 0x60 <= code <= 0x6F:
            return self._object(self.integer(depth) if code == 0x4F else code - 0x60, depth)
        if code == 0x51:
            index = self.integer(depth)
            if not 0 <= index < len(self.refs):
                raise HessianError(f"hessian2: reference {index} to an unknown object")
            return self.refs[index]
        raise HessianError(f"hessian2: unknown code {code:#04x} at offset {self.position - 1}")

    def _number(self, code: int) -> tuple | None:
        """(value,) for int, long and double codes; None for anything else."""
        if 0x80 <= code <= 0xBF:
            return (code - 0x90,)
        if 0xC0 <= code <= 0xCF:
            return (((code - 0xC8) << 8) + self.byte(),)
        if 0xD0 <= code <= 0xD7:
            return (((code - 0xD4) << 16) + self.unpack(">H"),)
        if code == 0x49:
            return (self.unpack(">i"),)
        if 0xD8 <= code <= 0xEF:
            return (code - 0xE0,)
        if 0xF0 <= code <= 0xFF:
            return (((code - 0xF8) << 8) + self.byte(),)
        if 0x38 <= code <= 0x3F:
            return (((code - 0x3C) << 16) + self.unpack(">H"),)
        if code == 0x59:
            return (self.unpack(">i"),)
        if code == 0x4C:
            return (self.unpack(">q"),)
        if code == 0x44:
            return (self.unpack(">d"),)
        if 0x5B <= code <= 0x5F:  # compact doubles: 0.0, 1.0, a byte, a short, a float in thousandths
            return ((0.0, 1.0)[code - 0x5B],) if code <= 0x5C else (float(self.unpack(">b")),) if code == 0x5D else \
                (float(self.unpack(">h")),) if code == 0x5E else (self.unpack(">i") / 1000.0,)
        return None

    def integer(self, depth: int = 0) -> int:
        value = self.value(depth + 1)
        if not isinstance(value, int) or isinstance(value, bool):
            raise HessianError(f"hessian2: expected an int, got {type(value).__name__}")
        return value

    def _characters(self, count: int) -> str:
        """``count`` UTF-16 units of (modified) UTF-8: the byte length is known only by scanning."""
        start, units = self.position, 0
        ascii_end = start + count
        if ascii_end <= len(self.data) and self.data[start:ascii_end].isascii():  # the common case: one byte per character
            self.position = ascii_end
            return self.data[start:ascii_end].decode("ascii")
        while units < count:
            lead = self.byte()
            size = 1 if lead < 0x80 else 2 if lead >> 5 == 0b110 else 3 if lead >> 4 == 0b1110 else 4 if lead >> 3 == 0b11110 else 0
            if size == 0:
                raise HessianError(f"hessian2: invalid UTF-8 lead byte {lead:#04x}")
            self.take(size - 1)
            units += 2 if size == 4 else 1
        try:
            return self.data[start:self.position].decode("utf-8", errors="surrogatepass").encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeError as error:
            raise HessianError(f"hessian2: a string is not valid UTF-8 ({error.reason})") from None

    def _string(self, code: int) -> str:
        parts = []
        while True:
            if code <= 0x1F:
                return "".join(parts) + self._characters(code)
            if code <= 0x33:
                return "".join(parts) + self._characters(((code - 0x30) << 8) + self.byte())
            length = self.unpack(">H")
            parts.append(self._characters(length))
            if code == 0x53:
                return "".join(parts)
            code = self.byte()  # 'R' chunks are followed by more string
            if not (code <= 0x1F or 0x30 <= code <= 0x33 or code in (0x52, 0x53)):
                raise HessianError(f"hessian2: a string chunk is followed by code {code:#04x}")

    def _binary(self, code: int) -> bytes:
        parts = []
        while True:
            if 0x20 <= code <= 0x2F:
                return b"".join(parts) + self.take(code - 0x20)
            if 0x34 <= code <= 0x37:
                return b"".join(parts) + self.take(((code - 0x34) << 8) + self.byte())
            parts.append(self.take(self.unpack(">H")))
            if code == 0x42:
                return b"".join(parts)
            code = self.byte()

    def _type(self, depth: int) -> str:
        """A type is a string, or an int referring to a type seen before."""
        value = self.value(depth + 1)
        if isinstance(value, str):
            self.types.append(value)
            return value
        if isinstance(value, int) and 0 <= value < len(self.types):
            return self.types[value]
        raise HessianError(f"hessian2: bad type reference {value!r}")

    def _until_end(self, read, depth: int) -> None:
        while self.data[self.position:self.position + 1] != b"Z":
            if self.position >= len(self.data):
                raise HessianError("hessian2: truncated list or map", truncated=True)
            read(depth)
        self.position += 1

    def _map(self, code: int, depth: int) -> dict:
        if code == 0x4D:
            self._type(depth)
        result: dict = {}
        self.refs.append(result)

        def pair(level):
            key = self.value(level + 1)
            result[key if isinstance(key, (str, int, float, bool, type(None))) else repr(key)] = self.value(level + 1)

        self._until_end(pair, depth)
        return result

    def _list(self, code: int, depth: int) -> list:
        if code in (0x55, 0x56) or 0x70 <= code <= 0x77:
            self._type(depth)
        result: list = []
        self.refs.append(result)
        if code in (0x55, 0x57):
            self._until_end(lambda level: result.append(self.value(level + 1)), depth)
            return result
        length = code - 0x70 if 0x70 <= code <= 0x77 else code - 0x78 if code >= 0x78 else self.integer(depth)
        if length < 0 or length > len(self.data):
            raise HessianError(f"hessian2: impossible list length {length}")
        result.extend(self.value(depth + 1) for _ in range(length))
        return result

    def _class_definition(self, depth: int) -> None:
        name = self.value(depth + 1)
        count = self.integer(depth)
        if not isinstance(name, str) or not 0 <= count <= len(self.data):
            raise HessianError("hessian2: bad class definition")
        self.classes.append((name, [self.value(depth + 1) for _ in range(count)]))

    def _object(self, index: int, depth: int) -> JavaObject:
        if not 0 <= index < len(self.classes):
            raise HessianError(f"hessian2: object of undefined class {index}")
        name, fields = self.classes[index]
        instance = JavaObject(name)
        self.refs.append(instance)
        for field_name in fields:
            instance.fields[str(field_name)] = self.value(depth + 1)
        return instance


def encode_string(text: str) -> bytes:
    """The shortest Hessian 2 form of ``text`` (lengths in UTF-16 units)."""
    units = len(text.encode("utf-16-be", "surrogatepass")) // 2
    data = text.encode("utf-8", "surrogatepass")
    if units <= 0x1F:
        return bytes([units]) + data
    if units <= 0x3FF:
        return bytes([0x30 + (units >> 8), units & 0xFF]) + data
    if units <= 0xFFFF:
        return b"S" + struct.pack(">H", units) + data
    raise ValueError("strings over 65535 characters are not written by meshlab")


def encode_map(pairs: list[bytes]) -> bytes:
    """An untyped map ('H' ... 'Z') from already encoded key and value pairs."""
    return b"H" + b"".join(pairs) + b"Z"
