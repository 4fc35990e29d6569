#!/usr/bin/env python3
"""Writes the hand-made malformed GGUF corpus and EXPECTED.tsv (file, expected message part).

Each file is a small variation of one valid file; the test suite checks that Rill
rejects each with an error containing the expected text. Run from this folder.
"""
import struct

def s(x):
    b = x.encode() if isinstance(x, str) else x
    return struct.pack("<Q", len(b)) + b

def kv(key, vtype, payload):
    return s(key) + struct.pack("<I", vtype) + payload

def tinfo(name, dims, ttype, offset):
    return s(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<q", d) for d in dims) + struct.pack("<IQ", ttype, offset)

def header(n_t, n_kv, version=3, magic=b"GGUF"):
    return magic + struct.pack("<IQQ", version, n_t, n_kv)

def pad(b, a=32):
    return b + b"\0" * ((-len(b)) % a)

ARCH = kv("general.architecture", 8, s("llama"))

def file(kvs, tensors, data, n_t=None, n_kv=None, version=3, magic=b"GGUF", align=32):
    head = header(len(tensors) if n_t is None else n_t, len(kvs) if n_kv is None else n_kv, version, magic)
    body = head + b"".join(kvs) + b"".join(tensors)
    return pad(body, align) + data

F32_16 = struct.pack("<16f", *range(16))
valid = file([ARCH], [tinfo("w", [16], 0, 0)], F32_16)

cases = {}
def case(name, data, expect):
    cases[name] = (data, expect)

case("empty.gguf", b"", "truncated while reading magic")
case("bad_magic.gguf", b"GGML" + valid[4:], "not a GGUF file")
case("magic_only.gguf", b"GGUF", "truncated while reading version")
case("version1.gguf", file([ARCH], [], b"", version=1), "version 1 is not supported")
case("version99.gguf", file([ARCH], [], b"", version=99), "unsupported GGUF version 99")
case("version_bigendian.gguf", file([ARCH], [], b"", version=0x03000000), "byte-swapped")
case("truncated_counts.gguf", valid[:12], "truncated while reading tensor count")
case("absurd_kv_count.gguf", file([ARCH], [], b"", n_kv=2**62), "metadata count")
case("absurd_tensor_count.gguf", file([ARCH], [], b"", n_t=2**60), "tensor count")
case("kv_count_too_high.gguf", file([ARCH], [], b"", n_kv=2), "metadata entry 1 has an empty key")
case("key_length_huge.gguf", header(0, 1) + struct.pack("<Q", 2**63) + b"abc" + b"\0" * 20, "past the end of the file")
case("key_truncated.gguf", header(0, 1) + struct.pack("<Q", 40) + b"general.arch", "past the end of the file")
case("empty_key.gguf", file([kv("", 4, struct.pack("<I", 1))], [], b""), "empty key")
case("unknown_value_type.gguf", file([kv("general.x", 13, b"\0" * 8)], [], b""), "unknown value type 13")
case("value_type_huge.gguf", file([kv("general.x", 0xFFFFFFFF, b"\0" * 8)], [], b""), "unknown value type")
case("string_value_huge.gguf", file([kv("general.name", 8, struct.pack("<Q", 2**40) + b"x")], [], b""), "past the end of the file")
case("array_count_huge.gguf", file([kv("general.a", 9, struct.pack("<IQ", 5, 2**61))], [], b""), "cannot fit")
case("array_strings_huge.gguf", file([kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 2**50))], [], b""), "cannot fit")
case("array_unknown_elem.gguf", file([kv("general.a", 9, struct.pack("<IQ", 77, 1) + b"\0" * 8)], [], b""), "unknown array element type 77")
nested = struct.pack("<IQ", 9, 1)
deep = b""
for _ in range(12):
    deep += struct.pack("<IQ", 9, 1)
case("array_nested_too_deep.gguf", file([kv("general.a", 9, deep + struct.pack("<IQ", 5, 0))], [], b""), "nested deeper")
case("bool_not_01.gguf", file([kv("general.b", 7, b"\x07")], [], b""), "not 0 or 1")
case("duplicate_key.gguf", file([ARCH, ARCH], [], b""), "duplicate metadata key 'general.architecture'")
case("alignment_not_pow2.gguf", file([kv("general.alignment", 4, struct.pack("<I", 24))], [], b""), "not a power of two")
case("alignment_zero.gguf", file([kv("general.alignment", 4, struct.pack("<I", 0))], [], b""), "not a power of two")
case("alignment_wrong_type.gguf", file([kv("general.alignment", 8, s("32"))], [], b""), "general.alignment must be uint32")
case("tensor_zero_dims.gguf", file([ARCH], [tinfo("w", [], 0, 0)], F32_16), "0 dimensions")
case("tensor_five_dims.gguf", file([ARCH], [tinfo("w", [1, 1, 1, 1, 16], 0, 0)], F32_16), "5 dimensions")
case("tensor_negative_dim.gguf", file([ARCH], [tinfo("w", [-16], 0, 0)], F32_16), "negative dimension")
case("tensor_shape_overflow.gguf", file([ARCH], [tinfo("w", [2**40, 2**40], 0, 0)], F32_16), "overflows")
case("tensor_unknown_type.gguf", file([ARCH], [tinfo("w", [16], 77, 0)], F32_16), "unknown type 77")
case("tensor_removed_type.gguf", file([ARCH], [tinfo("w", [32], 4, 0)], F32_16), "unknown type 4")
case("tensor_bad_block_multiple.gguf", file([ARCH], [tinfo("w", [16], 2, 0)], F32_16), "not a multiple of the q4_0 block size 32")
case("tensor_misaligned_offset.gguf", file([ARCH], [tinfo("w", [4], 0, 4)], F32_16), "not a multiple of the alignment")
case("tensor_data_past_end.gguf", file([ARCH], [tinfo("blk.3.ssm_a", [16], 0, 0)], F32_16[:32]), "tensor 'blk.3.ssm_a' data ends at byte")
case("tensor_offset_past_end.gguf", file([ARCH], [tinfo("w", [16], 0, 2**20)], F32_16), "past the end of the file")
case("tensor_offset_overflow.gguf", file([ARCH], [tinfo("w", [16], 0, 2**64 - 32)], F32_16), "past the end of the file")
case("tensor_duplicate_name.gguf", file([ARCH], [tinfo("w", [4], 0, 0), tinfo("w", [4], 0, 32)], pad(F32_16) + F32_16), "duplicate tensor name 'w'")
case("tensor_overlap.gguf", file([ARCH], [tinfo("a", [16], 0, 0), tinfo("b", [8], 0, 32)], F32_16 + F32_16), "overlaps")
case("tensor_empty_name.gguf", file([ARCH], [tinfo("", [16], 0, 0)], F32_16), "empty name")
case("tensor_name_truncated.gguf", header(1, 0) + struct.pack("<Q", 100) + b"blk.0" + b"x" * 20, "past the end of the file")
case("tensor_info_truncated.gguf", header(1, 0) + s("w") + struct.pack("<I", 4) + struct.pack("<3q", 1, 1, 1) + b"\0" * 4,
     "truncated while reading shape of tensor 'w'")
case("data_section_missing.gguf", file([ARCH], [tinfo("w", [16], 0, 0)], b"")[:-1], "past the end of the file")

with open("EXPECTED.tsv", "w") as out:
    for name, (data, expect) in sorted(cases.items()):
        with open(name, "wb") as f:
            f.write(data)
        out.write(f"{name}\t{expect}\n")
print(f"{len(cases)} files")
