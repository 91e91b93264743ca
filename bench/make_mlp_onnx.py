#!/usr/bin/python3
"""Write the MLP of the benchmark (../shared/bench/torch_baseline.py's "mlp": 784-1024-1024-10,
ReLU) as ONNX, without torch or onnx: the few protobuf messages are encoded by hand.

  python3 bench/make_mlp_onnx.py OUT.onnx [--layers 784,1024,1024,10]

Input "x" f32[N,784] (symbolic batch N), output "logits"; Gemm(transB=1) + Relu per layer,
initializers fc<i>.weight [out,in] and fc<i>.bias [out], uniform(-1/sqrt(in), 1/sqrt(in)) from a
fixed seed (torch.nn.Linear's range). The values do not matter for the counts; the shapes do.
"""
import random
import struct
import sys


def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def s(num, text):
    return field(num, 2, text.encode())


def tensor(name, dims, values):
    body = b"".join(field(1, 0, d) for d in dims) + field(2, 0, 1) + s(8, name)
    return body + field(9, 2, struct.pack("<%df" % len(values), *values))


def value_info(name, dims):
    shape = b"".join(field(1, 2, s(2, d) if isinstance(d, str) else field(1, 0, d)) for d in dims)
    ttype = field(1, 0, 1) + field(2, 2, shape)
    return s(1, name) + field(2, 2, field(1, 2, ttype))


def node(op, inputs, outputs, name, attrs=b""):
    return b"".join(s(1, i) for i in inputs) + b"".join(s(2, o) for o in outputs) + s(3, name) + s(4, op) + attrs


def model(layers):
    rng = random.Random(0)
    nodes, inits, x = [], [], "x"
    for i in range(len(layers) - 1):
        fin, fout = layers[i], layers[i + 1]
        bound = fin ** -0.5
        w, b = "fc%d.weight" % (i + 1), "fc%d.bias" % (i + 1)
        inits.append(tensor(w, [fout, fin], [rng.uniform(-bound, bound) for _ in range(fin * fout)]))
        inits.append(tensor(b, [fout], [rng.uniform(-bound, bound) for _ in range(fout)]))
        last = i == len(layers) - 2
        y = "logits" if last else "h%d" % (i + 1)
        trans_b = field(5, 2, s(1, "transB") + field(3, 0, 1) + field(20, 0, 2))
        nodes.append(node("Gemm", [x, w, b], [y + ("" if last else "_pre")], "/fc%d/Gemm" % (i + 1), trans_b))
        if not last:
            nodes.append(node("Relu", [y + "_pre"], [y], "/relu%d/Relu" % (i + 1)))
        x = y
    graph = b"".join(field(1, 2, n) for n in nodes) + s(2, "mlp")
    graph += b"".join(field(5, 2, t) for t in inits)
    graph += field(11, 2, value_info("x", ["N", layers[0]])) + field(12, 2, value_info("logits", ["N", layers[-1]]))
    opset = field(8, 2, s(1, "") + field(2, 0, 17))
    return field(1, 0, 8) + s(2, "dlcc-bench") + opset + field(7, 2, graph)


def main():
    args = sys.argv[1:]
    layers = [784, 1024, 1024, 10]
    if "--layers" in args:
        k = args.index("--layers")
        layers = [int(v) for v in args[k + 1].split(",")]
        del args[k:k + 2]
    if len(args) != 1:
        sys.exit(__doc__)
    with open(args[0], "wb") as f:
        f.write(model(layers))


if __name__ == "__main__":
    main()
