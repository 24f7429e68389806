#!/usr/bin/env python3
"""Checks which instruction sets the functions of libnibble.so use, from its disassembly.

One binary runs on any x86-64 CPU and picks kernels at run time, so code of one ISA level must
never end up where another level runs. Two ways it can, both silent until a CPU without the
instructions executes them (SIGILL) or a kernel runs at the wrong level:
  - flags wider than the function's kernel: the compiler may use any enabled instruction
    anywhere in a file (auto-vectorized loops, header functions);
  - one definition, several copies: inline and template functions compiled by several files with
    different flags are merged by the linker, which keeps ONE copy for all of them.

Rules (each failure names the function):
  1. VNNI instructions (vpdpbusd[s], vpdpwssd[s]) only in functions whose demangled name says
     "vnni" (kernels/x86/avx512/vnni_target.h): the plain AVX-512 kernels run on CPUs without it.
  2. No ymm/zmm registers in the scalar references (a `ref` namespace) or in the standard
     library's functions: code compiled without ISA flags never uses them, so their presence
     means the linker kept a copy compiled by an AVX2 or AVX-512 file.

Usage: check_isa_code.py path/to/libnibble.so
Exit status: 0 pass, 1 violations, 77 skipped (no objdump/c++filt: binutils).
"""
import re
import shutil
import subprocess
import sys

SKIP = 77
FUNCTION_LINE = re.compile(r"^[0-9a-f]+ <(.+)>:$")
VNNI_INSTRUCTION = re.compile(r"\svpdp(?:busd|wssd)s?\s")
WIDE_REGISTER = re.compile(r"%[yz]mm\d+")
STD_PREFIXES = ("St", "Sa", "Sb", "Ss", "Si", "So", "Sd")


def scopes(mangled):
    """The leading names of an Itanium-mangled symbol: its namespaces (and classes), then the
    function's name; for a local entity (a lambda) those of its enclosing function."""
    if mangled.startswith("_ZZ"):
        mangled = "_Z" + mangled[3:]
    if not mangled.startswith("_Z"):
        return []  # a C symbol
    s = mangled[2:]
    if s.startswith("N"):
        s = s[1:].lstrip("rVKO")  # cv- and ref-qualifiers of a member function
    names = []
    if s.startswith(STD_PREFIXES):
        names.append("std")
        s = s[2:]
    while s[:1].isdigit():
        length = re.match(r"\d+", s).group()
        names.append(s[len(length):len(length) + int(length)])
        s = s[len(length) + int(length):]
    return names


def functions(library):
    """{mangled name: [instruction lines]} of the library's code."""
    listing = subprocess.run(["objdump", "-d", "--no-show-raw-insn", library], check=True,
                             capture_output=True, text=True).stdout
    code, current = {}, None
    for line in listing.splitlines():
        match = FUNCTION_LINE.match(line)
        if match:
            current = code.setdefault(match.group(1), [])
        elif current is not None and line.startswith(" "):
            current.append(line)
    return code


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), check=True, capture_output=True,
                         text=True).stdout.splitlines()
    return dict(zip(names, out))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    library = sys.argv[1]
    for tool in ("objdump", "c++filt"):
        if shutil.which(tool) is None:
            print(f"SKIPPED: {tool} not found (install binutils); {library} not checked")
            return SKIP
    code = functions(library)
    readable = demangle(list(code))
    vnni_users, generic, failures = [], 0, []
    for name, lines in code.items():
        shown = readable[name]
        vnni = sum(1 for line in lines if VNNI_INSTRUCTION.search(line))
        if vnni:
            if "vnni" in shown.lower():
                vnni_users.append(shown)
            else:
                failures.append(f"{vnni} VNNI instructions in a function not named for VNNI "
                                f"(it may run on CPUs without VNNI): {shown}")
        path = scopes(name)
        if path[:1] in (["std"], ["__gnu_cxx"]) or "ref" in path[:-1]:
            generic += 1
            wide = sum(1 for line in lines if WIDE_REGISTER.search(line))
            if wide:
                failures.append(f"{wide} instructions on ymm/zmm registers in a reference or "
                                f"standard-library function (a copy compiled by an ISA file): "
                                f"{shown}")
    print(f"{library}: {len(code)} functions; VNNI instructions in {len(vnni_users)}:")
    for shown in sorted(vnni_users):
        print(f"  {shown[:150]}")
    print(f"{generic} reference and standard-library functions checked for ymm/zmm registers")
    for failure in failures:
        print(f"FAIL: {failure}")
    if failures:
        return 1
    print("OK: VNNI instructions only in functions named for VNNI; no ymm/zmm in reference or "
          "standard-library functions")
    return 0

if __name__ == "__main__":
    sys.exit(main())
