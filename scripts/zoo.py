#!/usr/bin/env python3
"""Exports the model zoo: real architectures from torchvision, timm, transformers and ultralytics
(and three written here), each with its library's default random initialisation under a fixed
seed, to ONNX, with one set of inputs and ONNX Runtime's outputs on them as the reference.

Nothing is downloaded: every model is built from its code or config (`pretrained=False`,
`weights=None`, ultralytics' `yolov8n.yaml`). Writes, under .cache/zoo/ (outside git):

    <name>.onnx                  the model
    <name>/inputs/<input>.npy    its inputs (seeded)
    <name>/ref/<output>.npy      ONNX Runtime's outputs on them (all graph optimizations off)
    manifest.json                per model: file, inputs (name, shape, dtype, file), outputs,
                                 forward FLOPs (torch's FlopCounterMode), tags, exporter

A model whose entry in the manifest was made by this same script (its SHA-256) is not exported
again unless --force is given. Tags: `small` marks the subset CI runs (fast to export and check),
`dynamic` an export with symbolic axes (its inputs use other sizes than the export did).

Usage: scripts/zoo.py [--small] [--models a,b] [--force] [--out .cache/zoo] [--list]
"""
import argparse
import hashlib
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".cache" / "zoo"
OPSET = 17  # the TorchScript exporter's default; below 17 it writes LayerNormalization decomposed
# No library may reach for the network: hubs are unreachable here and CI must not depend on them.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_VERBOSE", "False")


@dataclass
class Spec:
    """One zoo model: how to build it and what to feed it."""
    name: str
    build: Callable  # () -> torch.nn.Module, built under torch.manual_seed(seed)
    # Input name -> (shape at export, how to fill it: see `make_input`).
    inputs: dict
    outputs: list
    tags: list = field(default_factory=list)
    # Input name -> {axis: symbol} for a dynamic-axis export; inputs are then written at `run_shapes`.
    dynamic: dict = field(default_factory=dict)
    run_shapes: dict = field(default_factory=dict)
    exporter: str = "torchscript"  # or "dynamo" (torch.export + onnxscript)
    opset: int = OPSET
    seed: int = 0


# ---------------------------------------------------------------- models written here


def kws_net():
    """A 1-D convolutional keyword spotter over 40 MFCCs x 101 frames (TC-ResNet style):
    temporal Conv1d + BatchNorm + ReLU blocks with strided residual shortcuts, global average
    pooling, 12 classes."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv1d(cin, cout, 9, stride, 4, bias=False), nn.BatchNorm1d(cout), nn.ReLU(),
                nn.Conv1d(cout, cout, 9, 1, 4, bias=False), nn.BatchNorm1d(cout))
            self.skip = nn.Sequential(nn.Conv1d(cin, cout, 1, stride, bias=False), nn.BatchNorm1d(cout))

        def forward(self, x):
            return torch.relu(self.body(x) + self.skip(x))

    return nn.Sequential(nn.Conv1d(40, 64, 3, 1, 1, bias=False), nn.BatchNorm1d(64), nn.ReLU(),
                         Block(64, 96, 2), Block(96, 128, 2), Block(128, 160, 2),
                         nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(160, 12))


def crnn_kws():
    """A convolutional-recurrent keyword spotter: two Conv1d + ReLU layers, a 2-layer
    bidirectional GRU over the frames, the last frame's state to 12 classes."""
    import torch
    from torch import nn

    class CRNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Sequential(nn.Conv1d(40, 64, 5, 2, 2), nn.ReLU(), nn.Conv1d(64, 64, 3, 1, 1), nn.ReLU())
            self.gru = nn.GRU(64, 64, num_layers=2, batch_first=True, bidirectional=True)
            self.fc = nn.Linear(128, 12)

        def forward(self, x):
            y, _ = self.gru(self.conv(x).transpose(1, 2))
            return self.fc(y[:, -1])

    return CRNN()


def unet():
    """A 4-level U-Net segmenter: Conv+BN+ReLU pairs, max-pool down, ConvTranspose up with skip
    Concat, a head at half resolution brought to full size by bilinear Resize, 5 classes."""
    import torch
    from torch import nn
    import torch.nn.functional as F

    def pair(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    class UNet(nn.Module):
        def __init__(self, c=(16, 32, 64, 128)):
            super().__init__()
            self.stem = nn.Conv2d(3, c[0], 3, 2, 1)  # half resolution from here on
            self.down = nn.ModuleList([pair(c[0], c[0])] + [pair(a, b) for a, b in zip(c, c[1:])])
            self.up = nn.ModuleList([nn.ConvTranspose2d(b, a, 2, 2) for a, b in zip(c, c[1:])])
            self.fuse = nn.ModuleList([pair(2 * a, a) for a in c[:-1]])
            self.head = nn.Conv2d(c[0], 5, 1)

        def forward(self, x):
            x = self.stem(x)
            skips = []
            for i, d in enumerate(self.down):
                x = d(x if i == 0 else F.max_pool2d(x, 2))
                skips.append(x)
            for up, fuse, s in reversed(list(zip(self.up, self.fuse, skips))):
                x = fuse(torch.cat([up(x), s], 1))
            return F.interpolate(self.head(x), scale_factor=2.0, mode="bilinear", align_corners=False)

    return UNet()


# ---------------------------------------------------------------- models from libraries


def torchvision_model(name, **kw):
    def build():
        import torchvision
        return torchvision.models.get_model(name, weights=None, **kw)
    return build


def timm_model(name):
    def build():
        import timm
        return timm.create_model(name, pretrained=False)
    return build


def yolov8n():
    """ultralytics' YOLOv8n built from its yaml (random weights), with its Detect head in export
    mode: decoded boxes (DFL Softmax over 16 bins) and class sigmoids, [1, 84, anchors]."""
    from ultralytics.nn.tasks import DetectionModel
    model = DetectionModel("yolov8n.yaml", nc=80, verbose=False)
    head = model.model[-1]
    head.export, head.format, head.dynamic = True, "onnx", False
    return model


def hf_outputs(model, names, fields, **kwargs):
    """Wraps a transformers model so that it takes its inputs by position (keyword `names`) and
    returns a tuple of the named output fields."""
    import torch

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, *args):
            out = self.model(**dict(zip(names, args)), return_dict=True, **kwargs)
            return tuple(out[f] for f in fields)

    return Wrapped()


def bert(layers=4):
    def build():
        from transformers import BertConfig, BertModel
        cfg = BertConfig(vocab_size=8192, hidden_size=256, num_hidden_layers=layers, num_attention_heads=4,
                         intermediate_size=1024, max_position_embeddings=512, hidden_act="gelu",
                         attn_implementation="eager")
        return hf_outputs(BertModel(cfg).eval(), list(tokens()), ["last_hidden_state", "pooler_output"])
    return build


def gpt2():
    from transformers import GPT2Config, GPT2Model
    cfg = GPT2Config(vocab_size=8192, n_positions=256, n_embd=256, n_layer=4, n_head=4,
                     bos_token_id=8191, eos_token_id=8191, attn_implementation="eager")
    return hf_outputs(GPT2Model(cfg).eval(), list(tokens()), ["last_hidden_state"], use_cache=False)


def t5_encoder():
    """A T5 encoder (RMSNorm, relative position buckets with Log/Min/Where, ReLU MLP) at 4 layers,
    d_model 256."""
    from transformers import T5Config, T5EncoderModel
    cfg = T5Config(vocab_size=8192, d_model=256, d_kv=64, d_ff=1024, num_layers=4, num_heads=4,
                   attn_implementation="eager")
    return hf_outputs(T5EncoderModel(cfg).eval(), list(tokens()), ["last_hidden_state"])


def whisper_encoder():
    """Whisper-tiny's encoder sizes (4 layers, d_model 384, 6 heads) over 5 s of audio (500 mel
    frames; max_source_positions scaled to match)."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder
    cfg = WhisperConfig(num_mel_bins=80, d_model=384, encoder_layers=4, encoder_attention_heads=6,
                        encoder_ffn_dim=1536, max_source_positions=250, attn_implementation="eager")
    return hf_outputs(WhisperEncoder(cfg).eval(), ["input_features"], ["last_hidden_state"])


SEQ = 128


def image(size, batch=1):
    return {"input": ([batch, 3, size, size], "normal")}


def tokens(seq=SEQ, batch=1):
    """Token ids and an attention mask (without one, transformers' GPT-2 traces a packed-sequence
    check, aten::diff, that the TorchScript exporter cannot export)."""
    return {"input_ids": ([batch, seq], "tokens"), "attention_mask": ([batch, seq], "mask")}


SPECS = [
    Spec("resnet50", torchvision_model("resnet50"), image(224), ["logits"], ["cnn"]),
    Spec("mobilenet_v3_large", torchvision_model("mobilenet_v3_large"), image(224), ["logits"],
         ["cnn", "small"]),
    Spec("efficientnet_b0", torchvision_model("efficientnet_b0"), image(224), ["logits"], ["cnn"]),
    Spec("convnext_tiny", torchvision_model("convnext_tiny"), image(224), ["logits"], ["cnn"]),
    Spec("regnet_y_400mf", torchvision_model("regnet_y_400mf"), image(224), ["logits"], ["cnn"]),
    Spec("shufflenet_v2_x1_0", torchvision_model("shufflenet_v2_x1_0"), image(224), ["logits"],
         ["cnn", "small"]),
    Spec("yolov8n", yolov8n, image(320), ["detections"], ["detector", "small"]),
    Spec("unet", unet, image(256), ["mask"], ["segmenter", "small"]),
    Spec("deit_tiny", timm_model("deit_tiny_patch16_224"), image(224), ["logits"], ["transformer"]),
    Spec("bert", bert(), tokens(), ["last_hidden_state", "pooler_output"], ["transformer", "small"]),
    Spec("gpt2", gpt2, tokens(), ["last_hidden_state"], ["transformer", "small"]),
    Spec("whisper_tiny_encoder", whisper_encoder, {"input_features": ([1, 80, 500], "normal")},
         ["last_hidden_state"], ["transformer", "audio", "small"]),
    Spec("t5_encoder", t5_encoder, tokens(), ["last_hidden_state"], ["transformer", "small"]),
    Spec("swin_t", torchvision_model("swin_t"), image(224), ["logits"], ["transformer"]),
    Spec("mobilevit_xs", timm_model("mobilevit_xs"), image(256), ["logits"], ["transformer", "small"]),
    Spec("lraspp_mobilenet_v3", torchvision_model("lraspp_mobilenet_v3_large", weights_backbone=None,
                                                  num_classes=21), image(256), ["out"], ["segmenter", "small"]),
    Spec("crnn_kws", crnn_kws, {"mfcc": ([1, 40, 101], "normal")}, ["logits"], ["audio", "small"]),
    Spec("kws_conv1d", kws_net, {"mfcc": ([1, 40, 101], "normal")}, ["logits"], ["audio", "small"]),
    # Dynamic-axis exports: run at other sizes than they were traced at.
    Spec("mobilenet_v3_dynamic", torchvision_model("mobilenet_v3_large"), image(224), ["logits"],
         ["cnn", "dynamic", "small"], dynamic={"input": {0: "batch", 2: "height", 3: "width"}},
         run_shapes={"input": [2, 3, 192, 160]}),
    # Opset 14: LayerNormalization decomposed (ReduceMean, Sub, Pow, Sqrt, Div), as older exports have it.
    Spec("bert_dynamic", bert(layers=2), tokens(), ["last_hidden_state", "pooler_output"],
         ["transformer", "dynamic", "small"], opset=14,
         dynamic={"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}},
         run_shapes={"input_ids": [2, 96], "attention_mask": [2, 96]}),
    # The exporter torch now defaults to (torch.export + onnxscript): other op patterns.
    Spec("bert_dynamo", bert(), tokens(), ["last_hidden_state", "pooler_output"], ["transformer"],
         exporter="dynamo", opset=18),
    Spec("resnet18_dynamo", torchvision_model("resnet18"), image(224), ["logits"], ["cnn"],
         exporter="dynamo", opset=18),
]


# ---------------------------------------------------------------- export and reference


def make_input(name, shape, fill, seed):
    """Seeded inputs: standard normal f32 images/audio ("normal"), i64 token ids in [1, 8192)
    ("tokens"), an i64 attention mask with the last quarter of each row padded (0) ("mask")."""
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    if fill == "normal":
        return rng.standard_normal(shape, dtype=np.float32)
    if fill == "tokens":
        return rng.integers(1, 8192, size=shape, dtype=np.int64)
    if fill == "mask":
        mask = np.ones(shape, dtype=np.int64)
        mask[..., shape[-1] - shape[-1] // 4:] = 0
        return mask
    raise ValueError(f"unknown fill '{fill}'")


def export(spec: Spec, path: Path):
    """Builds the model under its seed and exports it; returns its forward FLOPs at export shape."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(spec.seed)
    model = spec.build().eval()
    args = tuple(torch.from_numpy(make_input(n, s, f, spec.seed)) for n, (s, f) in spec.inputs.items())
    names = list(spec.inputs)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*args)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if spec.exporter == "dynamo":
            torch.onnx.export(model, args, str(path), input_names=names, output_names=spec.outputs,
                              opset_version=spec.opset, dynamo=True, external_data=False, verbose=False)
        else:
            dyn = {n: dict(axes) for n, axes in spec.dynamic.items()} or None
            torch.onnx.export(model, args, str(path), input_names=names, output_names=spec.outputs,
                              opset_version=spec.opset, dynamo=False, dynamic_axes=dyn, do_constant_folding=True)
    return counter.get_total_flops()


def reference(spec: Spec, path: Path, folder: Path):
    """Writes the inputs (at run shapes) and ONNX Runtime's outputs on them; returns the manifest's
    input and output lists."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    (folder / "inputs").mkdir(parents=True, exist_ok=True)
    (folder / "ref").mkdir(parents=True, exist_ok=True)
    feeds, inputs = {}, []
    for n, (shape, fill) in spec.inputs.items():
        shape = spec.run_shapes.get(n, shape)
        feeds[n] = make_input(n, shape, fill, spec.seed)
        file = folder / "inputs" / f"{n}.npy"
        np.save(file, feeds[n])
        inputs.append({"name": n, "shape": shape, "dtype": str(feeds[n].dtype), "file": str(file.relative_to(ROOT)),
                       "dims": {str(a): s for a, s in spec.dynamic.get(n, {}).items()}})
    outs = sess.run(None, feeds)
    outputs = []
    for o, value in zip(sess.get_outputs(), outs):
        file = folder / "ref" / f"{o.name}.npy"
        np.save(file, value)
        if not np.isfinite(value).all():
            raise RuntimeError(f"{spec.name}: ONNX Runtime's output '{o.name}' is not finite")
        outputs.append({"name": o.name, "shape": list(value.shape), "dtype": str(value.dtype),
                        "file": str(file.relative_to(ROOT))})
    return inputs, outputs


def script_hash():
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="only the models tagged `small` (CI's subset)")
    ap.add_argument("--models", help="comma-separated model names (default: all)")
    ap.add_argument("--force", action="store_true", help="export again even if the cache is current")
    ap.add_argument("--out", type=Path, default=OUT, help="output folder (default .cache/zoo)")
    ap.add_argument("--list", action="store_true", help="print the models and their tags, export nothing")
    args = ap.parse_args()
    specs = select(SPECS, args.models, args.small)
    if args.list:
        for s in specs:
            print(f"{s.name:24} {','.join(s.tags)}")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    version = script_hash()
    failed = []
    for spec in specs:
        path = args.out / f"{spec.name}.onnx"
        entry = manifest.get(spec.name)
        if not args.force and entry and entry.get("version") == version and path.exists():
            print(f"{spec.name:24} cached", flush=True)
            continue
        start = time.perf_counter()
        try:
            flops = export(spec, path)
            inputs, outputs = reference(spec, path, args.out / spec.name)
        except Exception as e:  # noqa: BLE001 — one model that cannot be exported must not stop the others
            failed.append(spec.name)
            print(f"{spec.name:24} FAILED: {type(e).__name__}: {str(e).splitlines()[0][:300]}", flush=True)
            continue
        manifest[spec.name] = {"name": spec.name, "file": str(path.relative_to(ROOT)), "inputs": inputs,
                               "outputs": outputs, "flops": flops, "tags": spec.tags,
                               "exporter": spec.exporter, "opset": spec.opset,
                               "version": version}
        manifest_path.write_text(json.dumps(manifest, indent=1) + "\n")
        print(f"{spec.name:24} {path.stat().st_size / 2**20:6.1f} MiB  {flops / 1e9:6.2f} GFLOP  "
              f"{time.perf_counter() - start:5.1f} s", flush=True)
    if failed:
        sys.exit(f"export failed: {', '.join(failed)}")


def select(specs, models, small):
    """The specs named by --models (all if None), restricted to `small` ones with --small."""
    if models:
        names = models.split(",")
        unknown = sorted(set(names) - {s.name for s in specs})
        if unknown:
            sys.exit(f"unknown zoo model(s): {', '.join(unknown)} (try --list)")
        specs = [s for s in specs if s.name in names]
    return [s for s in specs if "small" in s.tags] if small else specs


if __name__ == "__main__":
    main()
