"""Minimal safetensors writer/reader (stdlib only) for LrmNative's golden files.

Layout: u64 little-endian header length N, N bytes of UTF-8 JSON padded with
spaces to a multiple of 8, then the raw little-endian tensor data. Tensors are
stored contiguously in sorted-name order; data_offsets are relative to the
start of the data section.
"""
import json
import struct

DTYPE_SIZES = {"F32": 4, "F64": 8, "BF16": 2, "F16": 2, "I64": 8, "I32": 4, "I16": 2, "U16": 2, "U8": 1, "I8": 1}


def encode(tensors, metadata):
    """tensors: {name: (dtype, shape list, raw bytes)}; metadata: {str: str}."""
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        numel = 1
        for s in shape:
            numel *= int(s)
        if len(raw) != numel * DTYPE_SIZES[dtype]:
            raise ValueError(f"{name}: {len(raw)} bytes for {dtype} {shape}")
        header[name] = {"dtype": dtype, "shape": [int(s) for s in shape],
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * ((-len(text)) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def write(path, tensors, metadata):
    data = encode(tensors, metadata)
    with open(path, "wb") as f:
        f.write(data)
    return len(data)


def decode(data):
    """Returns (metadata, {name: (dtype, shape, raw bytes)}); raises ValueError on any inconsistency."""
    if len(data) < 8:
        raise ValueError("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", data[:8])
    if n % 8 != 0 or 8 + n > len(data):
        raise ValueError(f"bad header length {n}")
    header = json.loads(data[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
        raise ValueError("metadata values must be strings")
    body = data[8 + n:]
    tensors = {}
    expect = 0
    for name in sorted(header):
        info = header[name]
        dtype, shape, (begin, end) = info["dtype"], info["shape"], info["data_offsets"]
        numel = 1
        for s in shape:
            numel *= s
        if begin != expect:
            raise ValueError(f"{name}: not contiguous in sorted order (begin {begin}, expected {expect})")
        if end - begin != numel * DTYPE_SIZES[dtype]:
            raise ValueError(f"{name}: {end - begin} bytes for {dtype} {shape}")
        tensors[name] = (dtype, shape, body[begin:end])
        expect = end
    if expect != len(body):
        raise ValueError(f"{len(body) - expect} trailing bytes")
    return metadata, tensors


def read(path):
    with open(path, "rb") as f:
        return decode(f.read())
