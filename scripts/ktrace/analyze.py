#!/usr/bin/env python3
# scripts/ktrace/analyze.py — summarises a ktrace kernel log (ktrace.c) of kvant decode: splits the graph
# kernels into graph launches (tokens), and per kernel kind reports launches per token, its share of the
# token's critical path (how far it moved the latest kernel end forward), and its mean duration; plus the
# host gap between graph launches. Usage: analyze.py ktrace.txt[.gz] [N: also list the first N kernels].
import collections
import gzip
import re
import subprocess
import sys


def read(path):
    rows = []
    with (gzip.open(path, 'rt') if path.endswith('.gz') else open(path)) as f:
        for line in f:
            p = line.split(' ', 7)
            if len(p) == 8:
                rows.append(tuple(int(x) for x in p[:7]) + (p[7].strip(),))
    rows.sort()
    return rows


def short_names(names):
    demangled = subprocess.run(['c++filt'], input='\n'.join(names), capture_output=True, text=True).stdout.split('\n')
    out = {}
    for name, d in zip(names, demangled):
        d = re.sub(r'\(kvant::(GgmlType|KvType)\)', r'\1 ', d).replace('(int)', '')
        d = re.sub(r'kvant::cuda::(q8::)?(\(anonymous namespace\)::)?', '', d)
        d = d[:d.find('>(') + 1] if '>(' in d else re.sub(r'\(.*$', '', d)
        out[name] = d.replace('void ', '')[:72]
    return out


def main():
    rows = read(sys.argv[1])
    listing = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    names = short_names(sorted({r[7] for r in rows}))
    launches, current, seen = [], [], set()
    for r in (r for r in rows if r[2] != 0):  # graph kernels, by start time
        if (r[2], r[3]) in seen:  # a node seen again: the next replay
            launches.append(current)
            current, seen = [], set()
        current.append(r)
        seen.add((r[2], r[3]))
    if current:
        launches.append(current)
    launches = [l for l in launches if len(l) > 5]
    print(f'{len(rows)} kernels, {len(launches)} graph launches, kernels per launch: '
          f'{collections.Counter(len(l) for l in launches).most_common(3)}')
    if not launches:
        return
    used = launches[-20:] if len(launches) > 24 else launches[len(launches) // 4:] or launches
    n = len(used)
    stats = collections.defaultdict(lambda: [0, 0.0, 0.0])  # launches, critical ns, duration ns
    for l in used:
        t0, latest = l[0][0], l[0][0]
        for r in l:
            s = stats[(names[r[7]], r[5], r[6])]
            s[0] += 1
            s[1] += max(0, r[1] - latest)
            s[2] += r[1] - r[0]
            latest = max(latest, r[1])
    spans = [max(r[1] for r in l) - l[0][0] for l in used]
    starts = [l[0][0] for l in used]
    ends = [max(r[1] for r in l) for l in used]
    print(f'graph span (first kernel start to last kernel end): {sum(spans) / n / 1e3:.1f} us per token')
    if n > 1:  # medians: a benchmark may run other work between some launches
        gaps = sorted(starts[i + 1] - ends[i] for i in range(n - 1))
        periods = sorted(starts[i + 1] - starts[i] for i in range(n - 1))
        print(f'median token period {periods[len(periods) // 2] / 1e3:.1f} us; median host gap between launches '
              f'{gaps[len(gaps) // 2] / 1e3:.1f} us (tracing adds some)')
    print(f"{'kernel':72s} {'grid':>5s} {'block':>5s} {'n/tok':>6s} {'critical us/tok':>15s} {'us each':>8s}")
    for (name, grid, block), s in sorted(stats.items(), key=lambda kv: -kv[1][1]):
        print(f'{name:72s} {grid:5d} {block:5d} {s[0] / n:6.1f} {s[1] / n / 1e3:15.1f} {s[2] / s[0] / 1e3:8.2f}')
    if listing:
        print('\nfirst token used, in order: start, duration, critical-path share (us)')
        t0, latest = used[0][0][0], used[0][0][0]
        for r in used[0][:listing]:
            share = max(0, r[1] - latest)
            latest = max(latest, r[1])
            print(f'{names[r[7]]:72s} {r[5]:5d} {(r[0] - t0) / 1e3:8.2f} {(r[1] - r[0]) / 1e3:7.2f} {share / 1e3:7.2f}')


if __name__ == '__main__':
    main()
