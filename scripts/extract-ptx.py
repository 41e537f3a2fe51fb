#!/usr/bin/env python3
"""Prints the PTX held by the `gpu.binary` ops of an MLIR module.

Reads the module (`dqt-opt --dqt-compile-gpu` output) from a file or stdin and
writes the `assembly = "..."` string of each #gpu.object, unescaped, so that
ptxas and FileCheck can read it.
"""
import re
import sys


def unescape(s: str) -> str:
    # MLIR prints non-printable bytes as \XX (two hex digits) and \\ and \".
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            nxt = s[i + 1]
            if nxt in "\\\"":
                out.append(ord(nxt))
                i += 2
                continue
            out.append(int(s[i + 1:i + 3], 16))
            i += 3
            continue
        out.extend(c.encode())
        i += 1
    return out.decode()


def main() -> int:
    text = open(sys.argv[1]).read() if len(sys.argv) > 1 else sys.stdin.read()
    found = re.findall(r'assembly = "((?:[^"\\]|\\.)*)"', text)
    if not found:
        print("extract-ptx: no gpu.object assembly in the input", file=sys.stderr)
        return 1
    for ptx in found:
        sys.stdout.write(unescape(ptx))
    return 0


if __name__ == "__main__":
    sys.exit(main())
