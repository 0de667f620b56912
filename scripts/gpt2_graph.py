"""A GPT-2-shaped decoder built node by node with onnx.helper, its seeded random weights streamed into one external
data file a tensor at a time: for sizes torch cannot export on a small machine (GPT-2-XL: 6.5 GB of weights, which
torch's export would hold twice in memory). Same architecture and op pattern as export_models.py's torch model
(opset 13): pre-LayerNorm blocks (ReduceMean/Sub/Pow/Sqrt/Div), fused QKV projection split in three, a causal mask
sliced once from a context-sized boolean buffer and read by every block, positions from Range(Shape(input_ids)),
tanh GELU, and the LM head tied to the token embedding, stored transposed as torch's constant folding stores it.

build() also computes the logits of one input with numpy over a memory map of the data file: an implementation
independent of ONNX Runtime, to compare the graph with (export_models.py saves it as NAME.output.npy). Peak memory is
about the largest tensor three times (the embedding, its transposed copy, and the write: ~1 GB for GPT-2-XL).

Run alone it writes a model of any size, e.g. a tiny one to reproduce a split's behaviour in seconds:
    scripts/gpt2_graph.py OUT.onnx --blocks 4 --d-model 64 --heads 4 --vocab 500 --context 64
(OUT.onnx.data beside it, and OUT.input.npy / OUT.output.npy: the input and numpy's logits).
"""
import argparse
import math
import os

import numpy as np
from onnx import TensorProto, helper, mapping, numpy_helper

ALIGNMENT = 64 << 10     # tensors of ALIGN_THRESHOLD bytes or more start at multiples of it (as export_models.py)
ALIGN_THRESHOLD = 1 << 20
EMBED_LIMIT = 1024       # smaller initializers stay in the .onnx
INIT_STD = 0.02          # GPT-2's initialisation
NOISE_STD = 1e-3         # biases and LayerNorm parameters: 0 or 1 plus noise, so no two initializers are equal


class _Weights:
    """Writes initializers: large ones appended to the data file (aligned), small ones embedded."""

    def __init__(self, data_path, location):
        self.file = open(data_path, "wb")
        self.location = location
        self.tensors = []  # TensorProtos, in writing order
        self.stored = {}   # name -> (offset, shape, dtype) in the data file, or the embedded array: for the reference
        self.params = 0

    def add(self, name, array):
        array = np.asarray(array) if np.asarray(array).flags.c_contiguous else np.array(array)  # keeps 0-d scalars
        self.params += array.size if array.dtype == np.float32 else 0
        if array.nbytes < EMBED_LIMIT:
            self.tensors.append(numpy_helper.from_array(array, name))
            self.stored[name] = array
            return name
        offset = self.file.tell()
        if array.nbytes >= ALIGN_THRESHOLD:
            offset = -(-offset // ALIGNMENT) * ALIGNMENT
            self.file.seek(offset)
        array.tofile(self.file)
        tensor = TensorProto(name=name, data_type=mapping.NP_TYPE_TO_TENSOR_TYPE[array.dtype], dims=array.shape)
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self.location), ("offset", str(offset)), ("length", str(array.nbytes))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        self.tensors.append(tensor)
        self.stored[name] = (offset, array.shape, array.dtype)
        return name

    def close(self):
        self.file.close()


def build(path, location, seed, vocab=50257, context=1024, d_model=1600, n_heads=25, n_layers=48):
    """Writes the model to PATH and its weights to LOCATION beside it; returns (input_ids, logits) of one input
    (batch 2, seq 7) computed with numpy. Returns the parameter count too (tied embedding counted once)."""
    rng = np.random.default_rng(seed)
    weights = _Weights(os.path.join(os.path.dirname(path), location), location)
    nodes = []
    counter = [0]

    def node(op, inputs, n_out=1, **attrs):
        counter[0] += 1
        outputs = [f"/{op}_{counter[0]}_out{i}" for i in range(n_out)]
        nodes.append(helper.make_node(op, inputs, outputs, name=f"/{op}_{counter[0]}", **attrs))
        return outputs[0] if n_out == 1 else outputs

    def const(name, value, dtype=np.int64):
        return weights.add(name, np.array(value, dtype=dtype))

    def normal(name, shape, std=INIT_STD, mean=0.0):
        return weights.add(name, (mean + std * rng.standard_normal(shape, dtype=np.float32)).astype(np.float32))

    def layer_norm(x, prefix):
        w = normal(f"{prefix}.weight", [d_model], NOISE_STD, 1.0)
        b = normal(f"{prefix}.bias", [d_model], NOISE_STD)
        mean = node("ReduceMean", [x], axes=[-1])
        centred = node("Sub", [x, mean])
        var = node("ReduceMean", [node("Pow", [centred, two])], axes=[-1])
        normed = node("Div", [centred, node("Sqrt", [node("Add", [var, eps])])])
        return node("Add", [node("Mul", [normed, w]), b])

    def linear(x, prefix, n_in, n_out):
        w = normal(f"{prefix}.weight", [n_in, n_out])  # stored as torch exports nn.Linear: transposed, [in, out]
        b = normal(f"{prefix}.bias", [n_out], NOISE_STD)
        return node("Add", [node("MatMul", [x, w]), b])

    head_dim = d_model // n_heads
    two = const("const.two", 2.0, np.float32)
    eps = const("const.eps", 1e-5, np.float32)
    half, one = const("const.half", 0.5, np.float32), const("const.one", 1.0, np.float32)
    gelu_a, gelu_b = const("const.gelu_a", 0.044715, np.float32), const("const.gelu_b", math.sqrt(2 / math.pi),
                                                                         np.float32)
    scale = const("const.scale", 1.0 / math.sqrt(head_dim), np.float32)
    lowest = const("const.lowest", np.finfo(np.float32).min, np.float32)
    heads_shape = const("const.heads_shape", [0, 0, n_heads, head_dim])
    model_shape = const("const.model_shape", [0, 0, d_model])
    split_sizes = const("const.qkv_split", [d_model] * 3)
    three = const("const.three", 3.0, np.float32)
    zero, one_i, axis0 = const("const.0", 0), const("const.1", 1), const("const.axis0", [0])
    zeros2, axes01 = const("const.00", [0, 0]), const("const.axes01", [0, 1])

    wte = (INIT_STD * rng.standard_normal([vocab, d_model], dtype=np.float32)).astype(np.float32)
    weights.add("wte.weight", wte)
    weights.add("lm_head.weight", wte.T)  # the tied head, transposed once as torch's constant folding does
    del wte
    normal("wpe.weight", [context, d_model])
    weights.add("future", np.triu(np.ones([context, context], dtype=bool), 1))

    seq = node("Gather", [node("Shape", ["input_ids"]), one_i], axis=0)
    positions = node("Range", [zero, seq, one_i])
    x = node("Add", [node("Gather", ["wte.weight", "input_ids"], axis=0),
                     node("Gather", ["wpe.weight", positions], axis=0)])
    seq1 = node("Unsqueeze", [seq, axis0])
    future = node("Slice", ["future", zeros2, node("Concat", [seq1, seq1], axis=0), axes01])  # read by every block

    for i in range(n_layers):
        p = f"blocks.{i}"
        h = layer_norm(x, f"{p}.ln_1")
        q, k, v = node("Split", [linear(h, f"{p}.attn.c_attn", d_model, 3 * d_model), split_sizes], n_out=3, axis=2)
        q, k, v = (node("Transpose", [node("Reshape", [y, heads_shape])], perm=perm)
                   for y, perm in ((q, [0, 2, 1, 3]), (k, [0, 2, 3, 1]), (v, [0, 2, 1, 3])))
        scores = node("Where", [future, lowest, node("Mul", [node("MatMul", [q, k]), scale])])
        y = node("MatMul", [node("Softmax", [scores], axis=-1), v])
        y = node("Reshape", [node("Transpose", [y], perm=[0, 2, 1, 3]), model_shape])
        x = node("Add", [x, linear(y, f"{p}.attn.c_proj", d_model, d_model)])
        m = linear(layer_norm(x, f"{p}.ln_2"), f"{p}.mlp.0", d_model, 4 * d_model)
        inner = node("Mul", [gelu_b, node("Add", [m, node("Mul", [gelu_a, node("Pow", [m, three])])])])
        g = node("Mul", [node("Mul", [half, m]), node("Add", [one, node("Tanh", [inner])])])
        x = node("Add", [x, linear(g, f"{p}.mlp.2", 4 * d_model, d_model)])
    nodes.append(helper.make_node("MatMul", [layer_norm(x, "ln_f"), "lm_head.weight"], ["logits"], name="/lm_head"))
    weights.close()

    graph = helper.make_graph(
        nodes, "gpt2", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", vocab])],
        initializer=weights.tensors)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="onnxpipe-gpt2-graph")
    model.ir_version = 8
    with open(path, "wb") as f:
        f.write(model.SerializeToString())

    input_ids = rng.integers(0, vocab, [2, 7], dtype=np.int64)
    logits = reference(os.path.join(os.path.dirname(path), location), weights.stored, input_ids, n_layers, n_heads)
    return input_ids, logits, weights.params - vocab * d_model


def reference(data_path, stored, input_ids, n_layers, n_heads):
    """The logits numpy computes from the data file, op for op as the graph. Each tensor is read when used and freed
    after (a memory map would leave all 6.5 GB of GPT-2-XL in the process's resident set)."""

    def w(name):
        if isinstance(stored[name], np.ndarray):
            return stored[name]
        offset, shape, dtype = stored[name]
        return np.fromfile(data_path, dtype=dtype, count=int(np.prod(shape)), offset=offset).reshape(shape)

    def layer_norm(x, prefix):
        centred = x - x.mean(-1, keepdims=True)
        return centred / np.sqrt((centred ** 2).mean(-1, keepdims=True) + np.float32(1e-5)) * w(
            f"{prefix}.weight") + w(f"{prefix}.bias")

    def linear(x, prefix):
        return x @ w(f"{prefix}.weight") + w(f"{prefix}.bias")

    b, t = input_ids.shape
    x = w("wte.weight")[input_ids] + w("wpe.weight")[:t]
    future = w("future")[:t, :t]
    d = x.shape[-1]
    hd = d // n_heads
    for i in range(n_layers):
        p = f"blocks.{i}"
        q, k, v = np.split(linear(layer_norm(x, f"{p}.ln_1"), f"{p}.attn.c_attn"), 3, axis=2)
        q, k, v = (y.reshape(b, t, n_heads, hd).transpose(0, 2, 1, 3) for y in (q, k, v))
        scores = np.where(future, np.finfo(np.float32).min, (q @ k.transpose(0, 1, 3, 2)) * np.float32(1 / math.sqrt(hd)))
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        y = (scores / scores.sum(-1, keepdims=True)) @ v
        x = x + linear(y.transpose(0, 2, 1, 3).reshape(b, t, d), f"{p}.attn.c_proj")
        m = linear(layer_norm(x, f"{p}.ln_2"), f"{p}.mlp.0")
        g = np.float32(0.5) * m * (1 + np.tanh(np.float32(math.sqrt(2 / math.pi)) * (m + np.float32(0.044715) * m ** 3)))
        x = x + linear(g, f"{p}.mlp.2")
    return (layer_norm(x, "ln_f") @ w("lm_head.weight")).astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description="Write a GPT-2-shaped ONNX model with seeded random weights.")
    parser.add_argument("out", help="the .onnx path; its weights go to OUT.data beside it")
    parser.add_argument("--blocks", type=int, default=48)
    parser.add_argument("--d-model", type=int, default=1600)
    parser.add_argument("--heads", type=int, default=25)
    parser.add_argument("--vocab", type=int, default=50257)
    parser.add_argument("--context", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    input_ids, logits, params = build(args.out, os.path.basename(args.out) + ".data", args.seed, vocab=args.vocab,
                                      context=args.context, d_model=args.d_model, n_heads=args.heads,
                                      n_layers=args.blocks)
    stem = args.out[:-len(".onnx")] if args.out.endswith(".onnx") else args.out
    np.save(stem + ".input.npy", input_ids)
    np.save(stem + ".output.npy", logits)
    print(f"{args.out}: {params} parameters")


if __name__ == "__main__":
    main()
