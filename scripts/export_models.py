#!/usr/bin/python3
"""Exports the seed's three benchmark models to ONNX with random weights: mobilenet_v2, resnet18, gpt2; and, only when
asked for by name, gpt2_large (`--only gpt2_large`), a GPT-2-large-shaped decoder of 3.1 GiB saved with external data,
and gpt2_xl (`--only gpt2_xl`, `make models-xl`), GPT-2-XL-shaped (48 blocks, d=1600, 1.56 B parameters, 6.5 GB of
external data), built node by node by scripts/gpt2_graph.py with its weights streamed to disk one tensor at a time,
since torch's export would hold them twice in memory; its expected output comes from numpy, not torch.

No model hub is reachable, so the architectures come from torchvision and from a GPT-2-small-shaped decoder written
here, with seeded random weights (the same bytes on every machine with the same torch). Every export is written to a
temporary file, checked, then renamed, so DIR never holds a half-written model. A model already exported and checked
is skipped: a small sidecar NAME.onnx.json records the size and mtime it was checked at, so a run where every model
exists costs milliseconds (`make test` calls this every time); a file the sidecar does not match (copied, touched) is
checked again and kept when it passes.

Besides NAME.onnx, each export writes NAME.input.npy and NAME.output.npy: one input and torch's output for it, so ONNX
Runtime's result can be compared with torch's (`onnxpipe verify` reads .npy inputs).

A model over protobuf's 2 GB limit (gpt2_large) keeps its weights in one NAME.onnx.data file beside NAME.onnx (tensors
of 1 MiB or more at 64 KiB-aligned offsets). torch writes one file per tensor; they are merged one tensor at a time.
The export itself peaks at about twice the weights in memory (gpt2_large: 1 minute, 6.9 GB, 3.1 GiB on disk).

usage: scripts/export_models.py [--out DIR] [--only NAME[,NAME]] [--force] [--quiet]
       scripts/export_models.py --only gpt2_large      (about 3.3 GiB on disk; not part of the default set)
       scripts/export_models.py --only gpt2_xl         (6.5 GB on disk, under 1 GB of memory, a few minutes)
Run with Debian's /usr/bin/python3 (python3-torch, python3-torchvision, python3-onnx).
"""
import argparse
import hashlib
import json
import math
import os
import shutil
import sys
import time
import warnings

OPSET = 13
NOISE_STD = 1e-3  # on every float parameter and buffer, so the exporter finds no two identical initializers
MODEL_NAMES = ("mobilenet_v2", "resnet18", "gpt2")  # exported by default; the others in SPECS only by name
# External data: initializers of EMBED_LIMIT bytes or more go to the data file (onnx.save_model's default threshold);
# those of ALIGN_THRESHOLD bytes or more start at multiples of ALIGNMENT, so a reader can map them page-aligned.
EMBED_LIMIT = 1024
ALIGNMENT = 64 << 10
ALIGN_THRESHOLD = 1 << 20


def log(quiet, message):
    if not quiet:
        print(f"[export] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------------------------
# GPT-2-shaped decoder (small by default, large with more layers and width): the layout of the original (pre-LayerNorm
# blocks, fused QKV projection, tanh GELU, tied LM head), with the features a splitter must handle: a causal mask built
# once and read by all blocks, positions from arange(seq) (exported as Range(Shape(input_ids))), and the embedding used
# at both ends of the graph.

def gpt2_model(vocab=50257, context=1024, d_model=768, n_heads=12, n_layers=12):
    import torch
    from torch import nn

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(d_model, 3 * d_model)
            self.c_proj = nn.Linear(d_model, d_model)
            self.head_dim = d_model // n_heads

        def forward(self, x, future):
            b, t, _ = x.shape
            q, k, v = self.c_attn(x).split(d_model, dim=2)
            q, k, v = (y.reshape(b, t, n_heads, self.head_dim).transpose(1, 2) for y in (q, k, v))
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(self.head_dim))
            scores = scores.masked_fill(future, torch.finfo(scores.dtype).min)
            y = torch.softmax(scores, dim=-1) @ v
            return self.c_proj(y.transpose(1, 2).reshape(b, t, d_model))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1 = nn.LayerNorm(d_model)
            self.attn = Attention()
            self.ln_2 = nn.LayerNorm(d_model)
            self.mlp = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.GELU(approximate="tanh"),
                                     nn.Linear(4 * d_model, d_model))

        def forward(self, x, future):
            x = x + self.attn(self.ln_1(x), future)
            return x + self.mlp(self.ln_2(x))

    class Gpt2(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(vocab, d_model)
            self.wpe = nn.Embedding(context, d_model)
            self.blocks = nn.ModuleList(Block() for _ in range(n_layers))
            self.ln_f = nn.LayerNorm(d_model)
            # True above the diagonal: the positions a token must not attend to. Boolean, so the noise leaves it alone.
            self.register_buffer("future", torch.ones(context, context, dtype=torch.bool).triu(1), persistent=False)
            # GPT-2's initialisation, so activations and logits have realistic magnitudes.
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(module.weight, std=0.02)
                if isinstance(module, nn.Linear):
                    nn.init.zeros_(module.bias)

        def forward(self, input_ids):
            t = input_ids.shape[1]
            future = self.future[:t, :t]  # one mask, read by every block
            x = self.wte(input_ids) + self.wpe(torch.arange(t, device=input_ids.device))
            for block in self.blocks:
                x = block(x, future)
            return self.ln_f(x) @ self.wte.weight.t()  # LM head tied to the token embedding

    return Gpt2()


def vision_model(name):
    import torch
    import torchvision

    model = getattr(torchvision.models, name)(weights=None)
    # Fresh batch norms hold mean 0 / variance 1 and normalise nothing, so activations drift layer after layer. A few
    # training-mode passes on random images give them the statistics of real inputs, as a trained model's would be.
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(8, 3, 224, 224))
    return model


# name -> how to build it and what its ONNX signature must be. Dims: int = fixed, str = symbolic (dynamic axis).
SPECS = {
    "mobilenet_v2": dict(build=lambda: vision_model("mobilenet_v2"), seed=1,
                         inputs={"input": ("float32", ["batch", 3, 224, 224])},
                         outputs={"output": ("float32", ["batch", 1000])}),
    "resnet18": dict(build=lambda: vision_model("resnet18"), seed=2,
                     inputs={"input": ("float32", ["batch", 3, 224, 224])},
                     outputs={"output": ("float32", ["batch", 1000])}),
    "gpt2": dict(build=gpt2_model, seed=3,
                 inputs={"input_ids": ("int64", ["batch", "seq"])},
                 outputs={"logits": ("float32", ["batch", "seq", 50257])}),
    # 774M parameters (2.9 GiB, plus the LM head's transposed copy): over protobuf's 2 GB, so external data. Opt-in:
    # its export needs 7 GB of memory and 3.1 GiB of disk.
    "gpt2_large": dict(build=lambda: gpt2_model(d_model=1280, n_heads=20, n_layers=36), seed=4, external_data=True,
                       inputs={"input_ids": ("int64", ["batch", "seq"])},
                       outputs={"logits": ("float32", ["batch", "seq", 50257])}),
    # GPT-2-XL's shape, the same architecture as gpt_model's export, written without torch (see gpt2_graph.py).
    "gpt2_xl": dict(graph=lambda path, location, seed: gpt2_graph().build(path, location, seed, d_model=1600,
                                                                          n_heads=25, n_layers=48),
                    seed=5, external_data=True,
                    inputs={"input_ids": ("int64", ["batch", "seq"])},
                    outputs={"logits": ("float32", ["batch", "seq", 50257])}),
}


def gpt2_graph():
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import gpt2_graph as module
    return module


def example_inputs(spec):
    """One input per graph input, with small odd sizes for the symbolic dims (batch 2, seq 7)."""
    import torch

    sizes = {"batch": 2, "seq": 7}
    result = []
    for dtype, dims in spec["inputs"].values():
        shape = [sizes[d] if isinstance(d, str) else d for d in dims]
        if dtype == "int64":
            result.append(torch.randint(0, 50257, shape, dtype=torch.int64))
        else:
            result.append(torch.rand(shape))
    return tuple(result)


# ---------------------------------------------------------------------------------------------------------------------
# Checks

ONNX_TYPES = {"float32": 1, "int64": 7}


def sidecar_path(path):
    return path + ".json"


def companion_paths(out_dir, name):
    return os.path.join(out_dir, f"{name}.input.npy"), os.path.join(out_dir, f"{name}.output.npy")


def data_location(name):
    """The external data file of NAME, relative to its .onnx (the `location` its tensors hold); None when embedded."""
    return f"{name}.onnx.data" if SPECS[name].get("external_data") else None


def cached(path, out_dir, name):
    """True when PATH (and its external data file) are the very files an earlier run exported and checked (same size
    and mtime as recorded)."""
    try:
        with open(sidecar_path(path)) as f:
            record = json.load(f)
        st = os.stat(path)
        location = data_location(name)
        data_st = os.stat(os.path.join(out_dir, location)) if location else None
    except (OSError, ValueError):
        return False
    if data_st and (record.get("data_bytes") != data_st.st_size or record.get("data_mtime_ns") != data_st.st_mtime_ns):
        return False
    return (record.get("bytes") == st.st_size and record.get("mtime_ns") == st.st_mtime_ns
            and all(os.path.exists(p) for p in companion_paths(out_dir, name)))


def adopt(path, out_dir, name, quiet):
    """A model file with no matching sidecar (copied, touched): keep it when it passes the checks, rather than spend a
    fresh export on it. Returns its new sidecar record, or None when it must be exported again."""
    import onnx

    location = data_location(name)
    needed = [path, *companion_paths(out_dir, name)] + ([os.path.join(out_dir, location)] if location else [])
    if not all(os.path.exists(p) for p in needed):
        return None
    log(quiet, f"{name}: {path} exists without a matching record: checking it")
    try:
        onnx.checker.check_model(path)
        model = onnx.load(path, load_external_data=False)
        check_signature(model, SPECS[name])
        check_external_data(model, location)
        check_distinct_initializers(model, out_dir)
    except Exception as e:
        log(quiet, f"{name}: {path} fails the checks ({type(e).__name__}: {e}): exporting again")
        return None
    return write_record(path, {"model": name, "nodes": len(model.graph.node), "adopted": True}, location)


def write_record(path, fields, location=None):
    """Writes PATH's sidecar; LOCATION: its external data file, whose size and mtime are recorded too."""
    st = os.stat(path)
    record = {"file": os.path.basename(path), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    if location:
        data_st = os.stat(os.path.join(os.path.dirname(path), location))
        record.update(data_file=location, data_bytes=data_st.st_size, data_mtime_ns=data_st.st_mtime_ns)
    record.update(fields)
    tmp = sidecar_path(path) + f".tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
    os.replace(tmp, sidecar_path(path))
    return record


def check_signature(model, spec):
    """The graph's inputs and outputs have the expected names, types and dims (symbolic where dynamic)."""
    def describe(values):
        result = {}
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_param if d.HasField("dim_param") else d.dim_value for d in t.shape.dim]
            result[v.name] = (t.elem_type, dims)
        return result

    initializers = {i.name for i in model.graph.initializer}
    for kind, values, expected in (("input", [v for v in model.graph.input if v.name not in initializers],
                                    spec["inputs"]), ("output", model.graph.output, spec["outputs"])):
        actual = describe(values)
        if list(actual) != list(expected):
            raise RuntimeError(f"graph {kind}s are {list(actual)}, expected {list(expected)}")
        for value_name, (dtype, dims) in expected.items():
            elem_type, actual_dims = actual[value_name]
            if elem_type != ONNX_TYPES[dtype]:
                raise RuntimeError(f"{kind} '{value_name}': element type {elem_type}, expected {dtype}")
            # The exporter names dynamic axes itself where they propagate; a fixed number where a symbol is expected
            # means tracing froze a size.
            if len(actual_dims) != len(dims) or any(
                    (isinstance(e, str) and not isinstance(a, str)) or (isinstance(e, int) and a != e)
                    for a, e in zip(actual_dims, dims)):
                raise RuntimeError(f"{kind} '{value_name}': dims {actual_dims}, expected {dims}")


def check_distinct_initializers(model, base_dir):
    """No two initializers hold the same bytes: the noise worked, so the exporter shared none of them. External ones
    are hashed from their file (BASE_DIR: the model's folder), a chunk at a time."""
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    seen = {}
    for init in model.graph.initializer:
        if init.data_type != ONNX_TYPES["float32"]:
            continue
        if uses_external_data(init):
            info = ExternalDataInfo(init)
            digest = hashlib.sha1()
            with open(os.path.join(base_dir, info.location), "rb") as f:
                f.seek(info.offset or 0)
                left = info.length
                while left:
                    chunk = f.read(min(left, 16 << 20))
                    if not chunk:
                        raise RuntimeError(f"initializer '{init.name}': {info.location} ends before its data")
                    digest.update(chunk)
                    left -= len(chunk)
            digest = digest.digest()
        elif init.raw_data:
            digest = hashlib.sha1(init.raw_data).digest()
        else:
            continue
        if digest in seen:
            raise RuntimeError(f"initializers '{seen[digest]}' and '{init.name}' hold identical values")
        seen[digest] = init.name


def check_external_data(model, location):
    """Every external tensor lives in LOCATION (None: the model has none) at an explicit offset and length, the large
    ones aligned; with LOCATION, only initializers under EMBED_LIMIT bytes stay embedded."""
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors, uses_external_data

    for init in model.graph.initializer:
        if location and not uses_external_data(init) and init.ByteSize() >= EMBED_LIMIT:
            raise RuntimeError(f"initializer '{init.name}' ({init.ByteSize()} bytes) is embedded")
    for tensor in _get_all_tensors(model):
        if not uses_external_data(tensor):
            continue
        info = ExternalDataInfo(tensor)
        if info.location != location or info.offset is None or not info.length:
            raise RuntimeError(f"tensor '{tensor.name}' is at {info.location} offset {info.offset} length "
                               f"{info.length}, expected {location} with an offset and a length")
        if info.length >= ALIGN_THRESHOLD and info.offset % ALIGNMENT:
            raise RuntimeError(f"tensor '{tensor.name}' at offset {info.offset} is not {ALIGNMENT}-aligned")


# ---------------------------------------------------------------------------------------------------------------------
# Export

def add_noise(model):
    import torch

    with torch.no_grad():
        for tensor in list(model.parameters()) + list(model.buffers()):
            if tensor.is_floating_point():
                tensor.add_(torch.randn_like(tensor) * NOISE_STD)
        for module in model.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.running_var.clamp_(min=NOISE_STD)  # a variance must stay positive


def remove_stale_temporaries(out_dir, name):
    """Deletes what an export killed midway left behind (a GPT-2 temporary is 620 MB, a gpt2_large one a folder of
    3 GiB); a live one's files stay."""
    prefix = f".{name}.onnx.tmp"
    for entry in os.listdir(out_dir):
        pid = entry[len(prefix):].split(".")[0]
        if not entry.startswith(prefix) or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            stale = os.path.join(out_dir, entry)
            if os.path.isdir(stale):
                shutil.rmtree(stale)
            else:
                os.remove(stale)
        except PermissionError:  # alive, someone else's
            pass


def merge_external_data(source, target, location):
    """Rewrites the model SOURCE (torch's export over 2 GB: one external file per tensor, beside it) as TARGET, with
    every external tensor, and every initializer of EMBED_LIMIT bytes or more, in the one file LOCATION beside TARGET.
    One tensor is in memory at a time, and each of torch's files is deleted once copied, so neither memory nor disk
    holds the weights twice. Returns the number of tensors written to LOCATION."""
    import onnx
    from onnx.external_data_helper import (ExternalDataInfo, _get_all_tensors, load_external_data_for_tensor,
                                           save_external_data, set_external_data, uses_external_data)

    source_dir, target_dir = os.path.dirname(source), os.path.dirname(target)
    model = onnx.load(source, load_external_data=False)
    initializers = {init.name for init in model.graph.initializer}
    end = 0
    moved = 0
    for tensor in _get_all_tensors(model):
        copied = None
        if uses_external_data(tensor):
            copied = os.path.join(source_dir, ExternalDataInfo(tensor).location)
            load_external_data_for_tensor(tensor, source_dir)
        elif tensor.name not in initializers or tensor.ByteSize() < EMBED_LIMIT:
            continue
        size = len(tensor.raw_data)
        offset = -(-end // ALIGNMENT) * ALIGNMENT if size >= ALIGN_THRESHOLD else end
        set_external_data(tensor, location, offset=offset)  # save_external_data pads the file up to the offset
        save_external_data(tensor, target_dir)
        tensor.ClearField("raw_data")
        end = offset + size
        moved += 1
        if copied:
            os.remove(copied)
    onnx.save_model(model, target)
    return moved


def torch_export(name, spec, export_path, tmp, location, quiet):
    """Builds SPEC's torch model, exports it to TMP (through EXPORT_PATH and a merge when LOCATION: external data);
    returns one input and torch's output for it, as numpy arrays."""
    import torch

    if location:
        os.makedirs(os.path.dirname(export_path))
    torch.manual_seed(spec["seed"])
    log(quiet, f"{name}: building with random weights (seed {spec['seed']})")
    model = spec["build"]()
    add_noise(model)
    model.eval()
    args = example_inputs(spec)
    with torch.no_grad():
        expected = model(*args)

    dynamic_axes = {}
    for value_name, (_, dims) in list(spec["inputs"].items()) + list(spec["outputs"].items()):
        axes = {i: d for i, d in enumerate(dims) if isinstance(d, str)}
        if axes:
            dynamic_axes[value_name] = axes
    log(quiet, f"{name}: exporting (opset {OPSET})")
    with warnings.catch_warnings():
        # A TracerWarning means a traced size became a constant: the dynamic axes would silently be fixed.
        warnings.simplefilter("error", torch.jit.TracerWarning)
        if quiet:
            warnings.simplefilter("ignore", UserWarning)
        # Over 2 GB, torch 1.13 switches to external data by itself: one file per tensor beside export_path.
        torch.onnx.export(model, args, export_path, opset_version=OPSET, do_constant_folding=True,
                          input_names=list(spec["inputs"]), output_names=list(spec["outputs"]),
                          dynamic_axes=dynamic_axes)
    del model
    if location:
        log(quiet, f"{name}: merging the weights into {location}")
        moved = merge_external_data(export_path, tmp, location)
        shutil.rmtree(os.path.dirname(export_path))
        log(quiet, f"{name}: {moved} tensors in {location}")
    return args[0].numpy(), expected.numpy()


def export(name, out_dir, quiet):
    """Exports NAME into OUT_DIR; returns the sidecar record."""
    import numpy as np
    import onnx

    spec = SPECS[name]
    path = os.path.join(out_dir, f"{name}.onnx")
    tmp = os.path.join(out_dir, f".{name}.onnx.tmp{os.getpid()}")
    location = data_location(name)
    tmp_dir = None
    export_path = tmp
    if location:  # a folder: torch's export (one file per tensor) in torch/, the merged (or built) model and data file
        tmp_dir = tmp
        export_path = os.path.join(tmp_dir, "torch", f"{name}.onnx")
        tmp = os.path.join(tmp_dir, f"{name}.onnx")
    input_path, output_path = companion_paths(out_dir, name)
    tmp_files = [tmp, tmp + ".input.npy", tmp + ".output.npy"]
    remove_stale_temporaries(out_dir, name)
    start = time.perf_counter()
    try:
        if "graph" in spec:
            os.makedirs(tmp_dir)
            log(quiet, f"{name}: building the graph, streaming seeded random weights (seed {spec['seed']}) into "
                       f"{location}, computing the expected output with numpy")
            args, expected, params = spec["graph"](tmp, location, spec["seed"])
            made_by = {"builder": "scripts/gpt2_graph.py (onnx.helper + numpy)", "parameters": params}
        else:
            args, expected = torch_export(name, spec, export_path, tmp, location, quiet)
            made_by = {"torch": __import__("torch").__version__}
        log(quiet, f"{name}: checking")
        onnx.checker.check_model(tmp)
        model_proto = onnx.load(tmp, load_external_data=False)
        # Strict shape inference in memory: onnx 1.12's check_model(path, full_check=True) writes the inferred shapes
        # back into the file, and the file must stay as the exporter wrote it.
        onnx.shape_inference.infer_shapes(model_proto, check_type=True, strict_mode=True)
        check_signature(model_proto, spec)
        check_external_data(model_proto, location)
        check_distinct_initializers(model_proto, os.path.dirname(tmp))
        nodes = len(model_proto.graph.node)
        del model_proto

        np.save(tmp_files[1], args)  # every model here has one input
        np.save(tmp_files[2], expected)
        # The .onnx last: its sidecar vouches for the companions and the data file too.
        os.replace(tmp_files[1], input_path)
        os.replace(tmp_files[2], output_path)
        if location:
            os.replace(os.path.join(tmp_dir, location), os.path.join(out_dir, location))
        os.replace(tmp, path)
    finally:
        if tmp_dir:
            shutil.rmtree(tmp_dir, ignore_errors=True)
        for f in tmp_files:
            if os.path.exists(f):
                os.remove(f)

    input_name, output_name = (os.path.basename(p) for p in companion_paths(out_dir, name))
    return write_record(path, {"model": name, "nodes": nodes, "opset": OPSET, "seed": spec["seed"],
                               "noise_std": NOISE_STD, "export_seconds": round(time.perf_counter() - start, 2),
                               **made_by, "onnx": onnx.__version__, "test_input": input_name,
                               "test_output": output_name}, location)


def size_text(path, name):
    """'623.4 MiB', or '2.1 MiB + 3198.0 MiB external data' for a model with a data file."""
    text = f"{os.path.getsize(path) / 2**20:.1f} MiB"
    location = data_location(name)
    if location:
        text += f" + {os.path.getsize(os.path.join(os.path.dirname(path), location)) / 2**20:.1f} MiB external data"
    return text


def main():
    opt_in = [n for n in SPECS if n not in MODEL_NAMES]
    parser = argparse.ArgumentParser(description="Export the benchmark models (random weights) to ONNX.")
    parser.add_argument("--out", default="models", help="output directory (default: models)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(MODEL_NAMES)} (the default), or of "
                                       f"{','.join(opt_in)}, exported only when named here")
    parser.add_argument("--force", action="store_true", help="export even when a checked file is already there")
    parser.add_argument("--quiet", action="store_true", help="only one line per model on stderr")
    args = parser.parse_args()

    names = list(MODEL_NAMES)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in SPECS]
        if unknown or not names:
            parser.error(f"--only: unknown model(s) {','.join(unknown)}; choose from {','.join(SPECS)}")
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as e:
        print(f"export_models: cannot create {args.out}: {e.strerror}", file=sys.stderr)
        return 1

    failed = 0
    for name in names:
        path = os.path.join(args.out, f"{name}.onnx")
        start = time.perf_counter()
        if not args.force and cached(path, args.out, name):
            print(f"{name}: {path} {size_text(path, name)}, already exported "
                  f"({time.perf_counter() - start:.2f} s)", file=sys.stderr)
            continue
        record = None if args.force else adopt(path, args.out, name, args.quiet)
        if record:
            print(f"{name}: {path} {size_text(path, name)}, {record['nodes']} nodes, already there and checked in "
                  f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
            continue
        try:
            record = export(name, args.out, args.quiet)
        except Exception as e:  # one model failing should not hide the others' results
            failed += 1
            print(f"{name}: export failed: {type(e).__name__}: {e}", file=sys.stderr)
            continue
        print(f"{name}: {path} {size_text(path, name)}, {record['nodes']} nodes, exported and checked in "
              f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
