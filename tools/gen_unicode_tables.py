#!/usr/bin/env python3
# tools/gen_unicode_tables.py — writes src/tokenizer/unicode_tables.cpp: code point flag ranges
# (category class + White_Space), NFD first-code-point and lowercase maps, from Debian's unicode-data.
"""Usage: gen_unicode_tables.py [UCD_DIR] > src/tokenizer/unicode_tables.cpp

Each code point gets exactly one category class bit (from its General_Category in
UnicodeData.txt; unlisted code points are Cn = undefined) plus the whitespace bit when
PropList.txt gives it White_Space. Consecutive code points with equal flags are merged
into one range; the table lists range starts in ascending order.

The WordPiece tables: for every code point whose canonical decomposition (NFD, with Hangul
syllables and canonical ordering) differs from itself, the first code point of that
decomposition (so accents fall away), as runs mapping to one target; and the simple
lowercase mapping (UnicodeData field 13) as runs of equal delta and stride."""

import sys
from pathlib import Path

MAX_CODEPOINTS = 0x110000

# Must match the CpFlag bits in src/tokenizer/unicode.h.
UNDEFINED, NUMBER, LETTER, SEPARATOR, MARK, PUNCTUATION, SYMBOL, CONTROL, WHITESPACE = (
    1, 2, 4, 8, 16, 32, 64, 128, 256)

CLASS_OF_MAJOR = {
    "L": LETTER, "N": NUMBER, "Z": SEPARATOR, "M": MARK,
    "P": PUNCTUATION, "S": SYMBOL, "C": CONTROL,
}


def category_flag(gc):
    if gc == "Cn":
        return UNDEFINED
    return CLASS_OF_MAJOR[gc[0]]


def read_categories(path):
    flags = [UNDEFINED] * MAX_CODEPOINTS
    range_start = None
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split(";")
        if len(fields) < 3:
            continue
        cp, name, gc = int(fields[0], 16), fields[1], fields[2]
        if name.endswith(", First>"):
            range_start = cp
            continue
        first = range_start if name.endswith(", Last>") else cp
        range_start = None
        for c in range(first, cp + 1):
            flags[c] = category_flag(gc)
    return flags


def read_whitespace(path):
    result = []
    for line in path.read_text(encoding="utf-8").splitlines():
        data = line.split("#", 1)[0].strip()
        if not data:
            continue
        cps, prop = (part.strip() for part in data.split(";"))
        if prop != "White_Space":
            continue
        lo, _, hi = cps.partition("..")
        result.extend(range(int(lo, 16), int(hi or lo, 16) + 1))
    return result


def read_decomposition_data(path):
    """Canonical decompositions and combining classes from UnicodeData.txt."""
    decomp, ccc = {}, {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split(";")
        if len(fields) < 14:
            continue
        cp = int(fields[0], 16)
        if fields[3] != "0":
            ccc[cp] = int(fields[3])
        if fields[5] and not fields[5].startswith("<"):
            decomp[cp] = [int(x, 16) for x in fields[5].split()]
    return decomp, ccc


HANGUL_FIRST, HANGUL_COUNT, HANGUL_L, HANGUL_PER_L = 0xAC00, 11172, 0x1100, 588


def full_nfd(cp, decomp, ccc):
    if HANGUL_FIRST <= cp < HANGUL_FIRST + HANGUL_COUNT:
        return [HANGUL_L + (cp - HANGUL_FIRST) // HANGUL_PER_L]  # only the first part matters here
    out = []
    for part in decomp.get(cp, [cp]):
        out.extend(full_nfd(part, decomp, ccc) if part != cp else [part])
    # canonical ordering: stable sort of each run of non-starters by combining class
    i = 0
    while i < len(out):
        if ccc.get(out[i], 0) == 0:
            i += 1
            continue
        j = i
        while j < len(out) and ccc.get(out[j], 0) != 0:
            j += 1
        out[i:j] = sorted(out[i:j], key=lambda c: ccc.get(c, 0))
        i = j
    return out


def nfd_first_runs(ucd):
    """Runs [first, last, even, odd]: code point c in the run maps to `even` when c - first is
    even, else to `odd` (upper/lower case letters with accents alternate like that)."""
    decomp, ccc = read_decomposition_data(ucd / "UnicodeData.txt")
    runs = []
    for cp in sorted(set(decomp) | set(range(HANGUL_FIRST, HANGUL_FIRST + HANGUL_COUNT))):
        target = full_nfd(cp, decomp, ccc)[0]
        if target == cp:
            continue
        if runs and runs[-1][1] == cp - 1:
            run = runs[-1]
            if run[0] == run[1]:
                run[1], run[3] = cp, target
                continue
            if (run[2] if (cp - run[0]) % 2 == 0 else run[3]) == target:
                run[1] = cp
                continue
        runs.append([cp, cp, target, target])
    return runs


def lowercase_runs(path):
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split(";")
        if len(fields) >= 14 and fields[13]:
            pairs.append((int(fields[0], 16), int(fields[13], 16)))
    runs = []  # [first, count, stride, delta]
    for cp, lower in pairs:
        delta = lower - cp
        if runs:
            first, count, stride, d = runs[-1]
            last = first + (count - 1) * stride
            if d == delta and count == 1 and cp - last in (1, 2):
                runs[-1] = [first, 2, cp - last, d]
                continue
            if d == delta and count > 1 and cp - last == stride:
                runs[-1][1] += 1
                continue
        runs.append([cp, 1, 1, delta])
    return runs


def write_wordpiece_tables(out, ucd):
    per_line = 4
    runs = nfd_first_runs(ucd)
    out.write("// {first, last, even, odd}: first code point of the NFD decomposition of the code points in\n")
    out.write("// [first, last]: `even` where the offset from first is even, else `odd`.\n")
    out.write("const NfdRun kNfdRuns[] = {\n")
    for i in range(0, len(runs), per_line):
        out.write("    " + " ".join("{0x%05X, 0x%05X, 0x%05X, 0x%05X}," % tuple(r) for r in runs[i:i + per_line]) + "\n")
    out.write("};\n")
    out.write("const size_t kNfdRunCount = sizeof(kNfdRuns) / sizeof(kNfdRuns[0]);\n\n")
    runs = lowercase_runs(ucd / "UnicodeData.txt")
    out.write("// {first, count, stride, delta}: first + k * stride lowercases to itself + delta, k < count.\n")
    out.write("const LowerRun kLowerRuns[] = {\n")
    for i in range(0, len(runs), per_line):
        out.write("    " + " ".join("{0x%05X, %d, %d, %d}," % tuple(r) for r in runs[i:i + per_line]) + "\n")
    out.write("};\n")
    out.write("const size_t kLowerRunCount = sizeof(kLowerRuns) / sizeof(kLowerRuns[0]);\n\n")


def main():
    ucd = Path(sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode")
    flags = read_categories(ucd / "UnicodeData.txt")
    for cp in read_whitespace(ucd / "PropList.txt"):
        flags[cp] |= WHITESPACE
    version = "unknown"
    readme = ucd / "ReadMe.txt"
    if readme.exists():
        for line in readme.read_text(encoding="utf-8").splitlines():
            if "Version" in line and "Unicode" in line:
                version = line.strip("# ").strip()
                break

    ranges = []
    for cp in range(MAX_CODEPOINTS):
        if not ranges or ranges[-1][1] != flags[cp]:
            ranges.append((cp, flags[cp]))

    out = sys.stdout
    out.write("// tokenizer/unicode_tables.cpp — GENERATED by tools/gen_unicode_tables.py; do not edit.\n")
    out.write("// Code point flag ranges (category class + White_Space), NFD first code points and lowercase\n")
    out.write("// mappings from the Unicode Character Database.\n")
    out.write(f"// Source: {version}\n")
    out.write('#include "tokenizer/unicode.h"\n\n')
    out.write("namespace kvant::unicode {\n\n")
    out.write("// {first code point of the range, flags}; a range ends where the next one starts.\n")
    out.write("const FlagRange kFlagRanges[] = {\n")
    per_line = 6
    for i in range(0, len(ranges), per_line):
        row = ranges[i:i + per_line]
        out.write("    " + " ".join("{0x%06X, 0x%03X}," % r for r in row) + "\n")
    out.write("};\n")
    out.write("const size_t kFlagRangeCount = sizeof(kFlagRanges) / sizeof(kFlagRanges[0]);\n\n")
    write_wordpiece_tables(out, ucd)
    out.write("}  // namespace kvant::unicode\n")


if __name__ == "__main__":
    main()
