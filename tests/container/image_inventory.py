"""What the image's virtual environment holds: run inside the image (stdlib only), prints JSON.

tests/container/test_image.py pipes this file into `python -` in the container. Each list
names files serving does not need; "largest" says where the bytes are.
"""

from __future__ import annotations

import importlib.util
import json
import os
import struct
import sysconfig

OURS = "flipkart_api"
# Directory names of test suites and pytest plugins shipped inside packages.
TEST_DIRS = {"tests", "test", "testing"}


def elf_sections(path: str) -> set[str]:
    """Section names of a 64-bit ELF file (empty for anything else)."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:  # 2: ELFCLASS64
        return set()
    order = "<" if data[5] == 1 else ">"
    (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
    entsize, count, names_index = struct.unpack_from(order + "HHH", data, 0x3A)

    def header(i: int) -> tuple[int, ...]:
        # Elf64_Shdr: name, type, flags, addr, offset, size, link, info, addralign, entsize
        return struct.unpack_from(order + "IIQQQQIIQQ", data, shoff + i * entsize)

    strings = header(names_index)[4]
    names = set()
    for i in range(count):
        start = strings + header(i)[0]
        names.add(data[start : data.index(b"\0", start)].decode())
    return names


def unstripped(path: str) -> bool:
    """Whether an extension module still has its symbol table or debug sections."""
    return any(n == ".symtab" or n.startswith(".debug") for n in elf_sections(path))


def mapped_libcrypto() -> list[str]:
    """The OpenSSL libcrypto files one process maps once ssl and psycopg's libpq are loaded."""
    import ssl  # noqa: F401 - loads the base image's OpenSSL, as hashlib and ssl do

    import psycopg

    psycopg.pq.version()  # loads libpq (and what it links against)
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "libcrypto" in line}
    return sorted(paths)


def inventory() -> dict[str, object]:
    """Leftovers by kind, the largest top-level entries, and the total."""
    site = sysconfig.get_path("purelib")
    found: dict[str, list[str]] = {
        "dependency_sources": [],
        "dependency_pycache": [],
        "test_suites": [],
        "type_stubs": [],
        "source_maps": [],
        "unstripped_extensions": [],
    }
    sizes: dict[str, int] = {}
    for root, dirs, files in os.walk(site):
        rel = os.path.relpath(root, site)
        top = rel.split(os.sep)[0]
        ours = top == OURS
        for d in dirs:
            if d == "__pycache__" and not ours:
                found["dependency_pycache"].append(os.path.join(rel, d))
            if d in TEST_DIRS:
                found["test_suites"].append(os.path.join(rel, d))
        for f in files:
            path = os.path.join(root, f)
            name = os.path.join(rel, f) if rel != "." else f
            if os.path.islink(path):
                continue
            entry = f if rel == "." else top
            sizes[entry] = sizes.get(entry, 0) + os.path.getsize(path)
            if f.endswith(".py") and not ours:
                found["dependency_sources"].append(name)
            elif f.endswith(".pyi"):
                found["type_stubs"].append(name)
            elif f.endswith(".map"):
                found["source_maps"].append(name)
            elif ".so" in f and unstripped(path):
                found["unstripped_extensions"].append(name)
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:12]
    return {
        **found,
        "watchfiles": importlib.util.find_spec("watchfiles") is not None,
        "libcrypto_mapped": mapped_libcrypto(),
        "psycopg_impl": __import__("psycopg").pq.__impl__,
        "largest_mb": {k: round(v / 1e6, 1) for k, v in largest},
        "site_packages_mb": round(sum(sizes.values()) / 1e6, 1),
    }


print(json.dumps(inventory()))
