"""The protobuf wire format, walked field by field (never value by value).

Used where parsing with protobuf would copy every weight (caffemodels, .onnx files) and where
files are written from the weights' own memory. A message is a sequence of fields, each a varint
key (field number << 3 | wire type) then a varint (type 0), 8 bytes (1), a varint length and that
many bytes (2), or 4 bytes (5).
"""

from __future__ import annotations


class Truncated(ValueError):
    """The bytes end inside a field, or are not protobuf at all."""


def fields(buf, start: int, end: int):
    """(number, wire type, key offset, value start, value end) of each field in buf[start:end]."""
    pos = start
    while pos < end:
        key_at = pos
        key, pos = varint_at(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, stop = varint_at(buf, pos)
        elif wire == 1:
            stop = pos + 8
        elif wire == 2:
            length, pos = varint_at(buf, pos)
            stop = pos + length
        elif wire == 5:
            stop = pos + 4
        else:
            raise Truncated(f"unexpected wire type {wire} at byte {key_at}")
        if stop > end or number == 0:
            raise Truncated(f"field {number} at byte {key_at} runs past its message")
        yield number, wire, key_at, pos, stop
        pos = stop


def varint_at(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise Truncated(f"varint at byte {pos} runs past the end of the file")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise Truncated(f"varint at byte {pos} is longer than 10 bytes")


def encode_varint(n: int) -> bytes:
    """n (>= 0) as a protobuf varint."""
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def field_key(number: int) -> bytes:
    """The key of length-delimited field `number`."""
    return encode_varint(number << 3 | 2)
