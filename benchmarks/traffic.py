"""Memory traffic of one run of a compiled XLA program, with every loop counted as often as it runs.

XLA's cost analysis (``compiled.cost_analysis()["bytes accessed"]``) counts the body of a
``while`` loop once, whatever its trip count: the engine's chunk step runs its time loop once
per block of steps, so that figure is the traffic of one block plus everything outside the
loop, not of a run. :func:`traffic` reads the optimized HLO text (``compiled.as_text()``)
and counts each top-level instruction of a computation the way the cost analysis does,
multiplied by the trip count XLA annotated on every enclosing loop:

* an instruction reads its operands and writes its result; a slice, dynamic slice or gather
  reads only the elements it returns; a fusion reads of each parameter only the fraction its
  slices and gathers use (a parameter read only through a slice of a tenth of it counts a
  tenth) and writes its result;
* an update in place (a ``dynamic-update-slice`` or ``scatter``, alone or as a fusion's root)
  reads and writes the update, not the whole buffer;
* tuples, parameters, constants, bitcasts and tuple elements move nothing; a conditional
  counts its most expensive branch (one runs); a loop whose trip count XLA does not know
  (a rejection sampler's retries) is counted once, and reported.

It is an estimate of the traffic a device without caches would see (what bounds a GPU
kernel), not a measurement: on a CPU much of it stays in cache.
"""

from __future__ import annotations

import collections
import re
from typing import NamedTuple

_BYTES = {"pred": 1, "s8": 1, "u8": 1, "s16": 2, "u16": 2, "f16": 2, "bf16": 2}
_BYTES |= {"s32": 4, "u32": 4, "f32": 4, "s64": 8, "u64": 8, "f64": 8, "c64": 8, "c128": 16}
_SHAPE = re.compile(r"\b(" + "|".join(_BYTES) + r")\[([\d,]*)\]")
_INSTRUCTION = re.compile(r"^\s*(ROOT )?%([\w.\-]+) = (.*?) ([\w\-]+)\((.*)$")
_FREE = {"parameter", "constant", "get-tuple-element", "tuple", "bitcast", "after-all", "partition-id", "iota"}
_IN_PLACE = {"dynamic-update-slice", "scatter"}


def nbytes(shape: str) -> int:
    """Bytes of an HLO shape (a tuple's elements added), e.g. ``f32[12,1024]`` -> 49,152."""
    total = 0
    for dtype, dims in _SHAPE.findall(shape):
        n = 1
        for d in filter(None, dims.split(",")):
            n *= int(d)
        total += n * _BYTES[dtype]
    return total


class _Instruction(NamedTuple):
    name: str
    shape: str
    op: str
    operands: list[str]
    attrs: str
    root: bool
    parameter: int  # a parameter's number; -1 for other operations


class Item(NamedTuple):
    """One instruction's share of a run: bytes moved (loops counted), its name, the JAX
    operation it came from and the innermost project source line that traced it."""

    bytes: float
    name: str
    op_name: str
    source: str


class Traffic(NamedTuple):
    """Bytes moved by one run (``total``), by one pass through each loop body (``once``,
    comparable with XLA's cost analysis), the instructions by bytes moved, largest first,
    and how many loops had no known trip count (counted once)."""

    total: float
    once: float
    items: list[Item]
    unknown_trips: int


def _share(x: _Instruction, i: int, operand: str) -> float:
    """The fraction of operand ``i`` (of shape ``operand``) that ``x`` reads: a slice,
    dynamic slice or gather reads the elements it returns, of its first operand."""
    if i == 0 and x.op in ("slice", "dynamic-slice", "gather"):
        return min(1.0, nbytes(x.shape) / max(1, nbytes(operand)))
    return 1.0


def _parse(text: str):
    computations: dict[str, list[_Instruction]] = {}
    entry, body = None, None
    for line in text.split("\n"):
        if line and not line.startswith(" ") and line.endswith("{") and "%" in line:
            name = line.split("%", 1)[1].split(" ", 1)[0]
            body = computations[name] = []
            entry = name if line.startswith("ENTRY") else entry
        elif line.startswith("}"):
            body = None
        elif body is not None and (m := _INSTRUCTION.match(line)):
            root, name, shape, op, rest = m.groups()
            depth, i = 1, 0
            while i < len(rest) and depth:  # the operand list ends at its closing parenthesis
                depth += {"(": 1, ")": -1}.get(rest[i], 0)
                i += 1
            inside = rest[: i - 1]
            number = int(inside) if op == "parameter" else -1
            body.append(_Instruction(name, shape, op, re.findall(r"%([\w.\-]+)", inside), rest[i:], bool(root), number))
    return computations, entry, _sources(text)


def _sources(text: str):
    """stack_frame_id -> the innermost frame's "file:line" outside JAX and site-packages."""
    sections: dict[str, list[str]] = collections.defaultdict(list)
    section = None
    for line in text.split("\n"):
        if line in ("FileNames", "FunctionNames", "FileLocations", "StackFrames"):
            section = line
        elif not line.strip():
            section = None
        elif section:
            sections[section].append(line)
    files = {int(a): b.strip('"') for a, b in (x.split(" ", 1) for x in sections["FileNames"])}
    locations = {}
    for x in sections["FileLocations"]:
        m = re.search(r"file_name_id=(\d+).*? line=(\d+)", x)
        if m:
            locations[int(x.split(" ", 1)[0])] = (files.get(int(m.group(1)), "?"), int(m.group(2)))
    frames = {}
    for x in sections["StackFrames"]:
        m = re.search(r"file_location_id=(\d+) parent_frame_id=(\d+)", x)
        if m:
            frames[int(x.split(" ", 1)[0])] = (int(m.group(1)), int(m.group(2)))

    def source(frame: int) -> str:
        seen: set[int] = set()
        while frame in frames and frame not in seen:
            seen.add(frame)
            loc, parent = frames[frame]
            file, line = locations.get(loc, ("?", 0))
            if "site-packages" not in file and "/jax/" not in file:
                return f"{'/'.join(file.split('/')[-2:])}:{line}"
            frame = parent
        return "?"

    return source


def traffic(text: str) -> Traffic:
    """The traffic of one run of the optimized HLO module ``text`` (see the module docstring)."""
    computations, entry, source = _parse(text)
    shapes = {(c, x.name): x.shape for c, body in computations.items() for x in body}
    roots = {c: next(x for x in body if x.root) for c, body in computations.items() if body}
    items: collections.Counter = collections.Counter()
    meta: dict[tuple[str, str], tuple[str, str]] = {}
    unknown = [0]

    def fusion_bytes(f: str, out: int, ins: list[int]) -> float:
        body, root = computations[f], roots[f]
        in_place = root.operands[0] if root.op in _IN_PLACE else None
        if in_place:
            out = sum(nbytes(shapes[(f, o)]) for o in root.operands[1:])
        used = {root.name: 1.0}  # the fraction of each value the fusion computes
        for x in reversed(body):  # the text is in topological order: users after operands
            u = used.get(x.name, 0.0)
            for i, o in enumerate(dict.fromkeys(x.operands)):  # an operand named twice is read once
                share = _share(x, i, shapes[(f, o)])
                used[o] = min(1.0, used.get(o, 0.0) + u * share)
        total = float(out)
        for x in body:
            if x.op == "parameter" and x.name != in_place and x.parameter < len(ins):
                total += used.get(x.name, 0.0) * ins[x.parameter]
        return total

    def cost(c: str, times: int, record: bool, trips: bool) -> float:
        total = 0.0
        for x in computations[c]:
            if x.op in _FREE:
                continue
            if x.op == "while":
                body = re.search(r"body=%([\w.\-]+)", x.attrs).group(1)
                cond = re.search(r"condition=%([\w.\-]+)", x.attrs).group(1)
                m = re.search(r'known_trip_count":\{"n":"(\d+)"', x.attrs)
                n = int(m.group(1)) if m and trips else 1
                unknown[0] += record and not m
                total += n * (cost(body, times * n, record, trips) + cost(cond, times * n, record, trips))
                continue
            if x.op in ("conditional", "call"):
                found = re.search(r"(branch_computations=\{[^}]*\}|true_computation=.*|to_apply=%[\w.\-]+)", x.attrs)
                callees = [b for b in re.findall(r"%([\w.\-]+)", found.group(1) if found else "") if b in computations]
                if callees:  # one branch runs: the most expensive is counted
                    total += cost(max(callees, key=lambda b: cost(b, times, False, trips)), times, record, trips)
                continue
            out, ins = nbytes(x.shape), [nbytes(shapes.get((c, o), "")) for o in x.operands]
            if x.op == "fusion":
                moved = fusion_bytes(re.search(r"calls=%([\w.\-]+)", x.attrs).group(1), out, ins)
            elif x.op in _IN_PLACE and ins and ins[0] == out:
                moved = 2.0 * sum(ins[1:])
            else:
                moved = out + sum(
                    share * b
                    for share, b in zip((_share(x, i, shapes.get((c, o), "")) for i, o in enumerate(x.operands)), ins)
                )
            total += moved
            if record:
                items[(c, x.name)] += moved * times
                op_name = re.search(r'op_name="([^"]*)"', x.attrs)
                frame = re.search(r"stack_frame_id=(\d+)", x.attrs)
                meta[(c, x.name)] = (op_name.group(1) if op_name else "", source(int(frame.group(1))) if frame else "?")
        return total

    total = cost(entry, 1, True, True)
    ranked = [Item(b, name, *meta[(c, name)]) for (c, name), b in items.most_common()]
    return Traffic(total, cost(entry, 1, False, False), ranked, unknown[0])
