#!/usr/bin/python3
"""Compare dlcc outputs with reference fixtures.  Needs only numpy.

  compare.py npy A.npy B.npy [--rtol R] [--atol A]
  compare.py csv A.csv B.csv [--col loss] [--rtol R] [--atol A]
  compare.py safetensors A.safetensors B.safetensors [--rtol R] [--atol A] [--allow-extra]

A is the file under test, B the reference.  Elements match when |a - b| <= atol + rtol * |b|
(numpy.isclose); NaN never matches, except NaN against NaN.  Prints the max abs / rel difference per
compared item, and one line per failure naming what differs ("FAIL: ...").  Exit status: 0 all match,
1 mismatch, 2 bad usage or unreadable file.

safetensors: both files must hold the same tensor names (with --allow-extra, names only in A -- e.g.
saved optimizer state -- are ignored), and per name the same shape; dtypes may differ (both are
compared in float64) but a dtype difference is reported as a note.
csv: same number of data rows; rows are compared in the column named by --col (default "loss").
"""
import argparse
import csv
import json
import struct
import sys

import numpy as np

DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-6

ST_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
    "I8": "i1", "U8": "u1", "U16": "<u2", "U32": "<u4", "U64": "<u8", "BOOL": "?",
}


class BadInput(Exception):
    pass


def bf16_to_f32(raw):
    u = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
    return u.view(np.float32)


def read_safetensors(path):
    """Parse a .safetensors file with numpy only: {name: ndarray}, metadata."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise BadInput(f"{path}: cannot read: {e.strerror}")
    if len(data) < 8:
        raise BadInput(f"{path}: too short for a safetensors header ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise BadInput(f"{path}: header length {n} exceeds file size {len(data)}")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise BadInput(f"{path}: header is not valid JSON: {e}")
    if not isinstance(header, dict):
        raise BadInput(f"{path}: header is not a JSON object")
    body = data[8 + n:]
    meta = header.pop("__metadata__", {})
    out = {}
    for name, info in header.items():
        try:
            dt, shape, (a, b) = info["dtype"], [int(s) for s in info["shape"]], info["data_offsets"]
        except (KeyError, TypeError, ValueError):
            raise BadInput(f"{path}: tensor {name!r}: malformed header entry {info!r}")
        if not (0 <= a <= b <= len(body)):
            raise BadInput(f"{path}: tensor {name!r}: data_offsets [{a},{b}] outside data ({len(body)} bytes)")
        raw = body[a:b]
        count = int(np.prod(shape)) if shape else 1
        if dt == "BF16":
            if len(raw) != 2 * count:
                raise BadInput(f"{path}: tensor {name!r}: {len(raw)} bytes for BF16{shape}")
            arr = bf16_to_f32(raw).reshape(shape)
        elif dt in ST_DTYPES:
            npdt = np.dtype(ST_DTYPES[dt])
            if len(raw) != npdt.itemsize * count:
                raise BadInput(f"{path}: tensor {name!r}: {len(raw)} bytes for {dt}{shape}")
            arr = np.frombuffer(raw, dtype=npdt).reshape(shape)
        else:
            raise BadInput(f"{path}: tensor {name!r}: unsupported dtype {dt}")
        out[name] = (dt, arr)
    return out, meta


def read_npy(path):
    try:
        return np.load(path, allow_pickle=False)
    except OSError as e:
        raise BadInput(f"{path}: cannot read: {e}")
    except ValueError as e:
        raise BadInput(f"{path}: not a valid .npy file: {e}")


def diff_arrays(a, b, rtol, atol):
    """-> (ok, n_bad, max_abs, max_rel, first_bad_index)"""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.size == 0:
        return True, 0, 0.0, 0.0, None
    with np.errstate(invalid="ignore", divide="ignore"):
        ok = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
        d = np.abs(a - b)
        both_nan = np.isnan(a) & np.isnan(b)
        d = np.where(both_nan, 0.0, d)
        rel = np.where(d == 0, 0.0, d / np.abs(b))
    max_abs = float(np.max(np.where(np.isnan(d), np.inf, d)))
    max_rel = float(np.max(np.where(np.isnan(rel), np.inf, rel)))
    bad = ~ok
    first = None
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
    return not bad.any(), int(bad.sum()), max_abs, max_rel, first


def cmp_npy(args):
    a, b = read_npy(args.a), read_npy(args.b)
    if a.shape != b.shape:
        print(f"FAIL: {args.a}: shape {list(a.shape)} != {list(b.shape)} in {args.b}")
        return 1
    kinds = "biuf"
    if a.dtype.kind not in kinds or b.dtype.kind not in kinds:
        print(f"FAIL: {args.a}: dtype {a.dtype} / {b.dtype} not numeric")
        return 1
    if (a.dtype.kind == "f") != (b.dtype.kind == "f"):
        print(f"FAIL: {args.a}: dtype {a.dtype} != {b.dtype} in {args.b} (integer vs float)")
        return 1
    ok, nbad, mabs, mrel, first = diff_arrays(a, b, args.rtol, args.atol)
    print(f"{args.a}: shape {list(a.shape)} max abs diff {mabs:.3g} max rel diff {mrel:.3g}")
    if not ok:
        print(f"FAIL: {args.a}: {nbad} of {a.size} elements differ beyond rtol={args.rtol} atol={args.atol};"
              f" first at index {list(first)}: {a[first]!r} vs {b[first]!r}")
        return 1
    return 0


def read_csv_col(path, col):
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except OSError as e:
        raise BadInput(f"{path}: cannot read: {e.strerror}")
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if not rows:
        raise BadInput(f"{path}: empty csv")
    head = [h.strip() for h in rows[0]]
    if col not in head:
        raise BadInput(f"{path}: no column {col!r} in header {head}")
    i = head.index(col)
    vals = []
    for ln, r in enumerate(rows[1:], start=2):
        try:
            vals.append(float(r[i]))
        except (IndexError, ValueError):
            raise BadInput(f"{path}:{ln}: cannot read column {col!r} from {r}")
    steps = None
    if "step" in head and col != "step":
        j = head.index("step")
        try:
            steps = [int(r[j]) for r in rows[1:]]
        except (IndexError, ValueError):
            steps = None
    return vals, steps


def cmp_csv(args):
    va, sa = read_csv_col(args.a, args.col)
    vb, sb = read_csv_col(args.b, args.col)
    if len(va) != len(vb):
        print(f"FAIL: {args.a}: {len(va)} rows != {len(vb)} rows in {args.b}")
        return 1
    rc = 0
    if sa is not None and sb is not None and sa != sb:
        k = next(i for i in range(len(sa)) if sa[i] != sb[i])
        print(f"FAIL: {args.a}: row {k + 1}: step {sa[k]} != {sb[k]} in {args.b}")
        rc = 1
    worst_abs = worst_rel = 0.0
    for k, (x, y) in enumerate(zip(va, vb)):
        ok, _, mabs, mrel, _ = diff_arrays(np.array(x), np.array(y), args.rtol, args.atol)
        worst_abs, worst_rel = max(worst_abs, mabs), max(worst_rel, mrel)
        if not ok:
            step = sb[k] if sb is not None else k
            print(f"FAIL: {args.a}: step {step}: {args.col} {x!r} vs {y!r} (rel diff {mrel:.3g} > rtol {args.rtol})")
            rc = 1
    print(f"{args.a}: {len(va)} rows, column {args.col}: max abs diff {worst_abs:.3g} max rel diff {worst_rel:.3g}")
    return rc


def cmp_safetensors(args):
    ta, _ = read_safetensors(args.a)
    tb, _ = read_safetensors(args.b)
    rc = 0
    for n in sorted(set(tb) - set(ta)):
        print(f"FAIL: {args.a}: missing tensor {n!r} (present in {args.b})")
        rc = 1
    if not args.allow_extra:
        for n in sorted(set(ta) - set(tb)):
            print(f"FAIL: {args.a}: extra tensor {n!r} (not in {args.b})")
            rc = 1
    for n in sorted(set(ta) & set(tb)):
        (da, a), (db, b) = ta[n], tb[n]
        if a.shape != b.shape:
            print(f"FAIL: {args.a}: tensor {n!r}: shape {list(a.shape)} != {list(b.shape)}")
            rc = 1
            continue
        ok, nbad, mabs, mrel, first = diff_arrays(a, b, args.rtol, args.atol)
        note = "" if da == db else f" (dtype {da} vs {db})"
        print(f"{n}: shape {list(a.shape)} max abs diff {mabs:.3g} max rel diff {mrel:.3g}{note}")
        if not ok:
            print(f"FAIL: {args.a}: tensor {n!r}: {nbad} of {a.size} elements differ beyond "
                  f"rtol={args.rtol} atol={args.atol}; first at index {list(first)}: "
                  f"{a[first]!r} vs {b[first]!r}")
            rc = 1
    return rc


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd")
    for name in ("npy", "csv", "safetensors"):
        s = sub.add_parser(name)
        s.add_argument("a", help="file under test")
        s.add_argument("b", help="reference file")
        s.add_argument("--rtol", type=float, default=DEFAULT_RTOL)
        s.add_argument("--atol", type=float, default=DEFAULT_ATOL if name != "csv" else 0.0)
        if name == "csv":
            s.add_argument("--col", default="loss")
        if name == "safetensors":
            s.add_argument("--allow-extra", action="store_true",
                           help="ignore tensors present only in A (e.g. optimizer state)")
    args = p.parse_args(argv)
    if not args.cmd:
        p.print_usage(sys.stderr)
        return 2
    try:
        return {"npy": cmp_npy, "csv": cmp_csv, "safetensors": cmp_safetensors}[args.cmd](args)
    except BadInput as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
