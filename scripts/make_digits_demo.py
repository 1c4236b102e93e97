"""Trains the demo model that ships in models/demo/: a small CNN on scikit-learn's bundled 8x8
handwritten digits (1,797 images, no download), exported to ONNX with its held-out images.

Writes
  models/demo/digits.onnx         Conv+BatchNorm+Relu x2, MaxPool, two Gemms; input `images`
                                  f32[batch,1,8,8] (pixels scaled to [0, 1]), output `logits` f32[batch,10]
  models/demo/digits_images.npy   the 360 held-out images, f32[360,1,8,8]
  models/demo/digits_labels.npy   their labels, i64[360]
  models/demo/digits.json         training facts: seed, epochs, held-out accuracy under torch and ONNX Runtime

Deterministic (fixed seeds, one thread). Usage: python3 scripts/make_digits_demo.py
"""

import json
import pathlib

import numpy as np
import onnxruntime as ort
import torch
from sklearn.datasets import load_digits
from torch import nn

OUT = pathlib.Path(__file__).resolve().parent.parent / "models" / "demo"
SEED = 7
EPOCHS = 40
HELD_OUT = 360


class DigitsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def main():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(SEED).permutation(len(x))
    test, train = order[:HELD_OUT], order[HELD_OUT:]

    model = DigitsNet()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    xt, yt = torch.from_numpy(x[train]), torch.from_numpy(y[train])
    for epoch in range(EPOCHS):
        model.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        torch_pred = model(torch.from_numpy(x[test])).argmax(1).numpy()
    torch_acc = float((torch_pred == y[test]).mean())

    OUT.mkdir(parents=True, exist_ok=True)
    onnx_path = OUT / "digits.onnx"
    torch.onnx.export(
        model, torch.zeros(1, 1, 8, 8), str(onnx_path), input_names=["images"], output_names=["logits"],
        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17, dynamo=False,
    )
    np.save(OUT / "digits_images.npy", x[test])
    np.save(OUT / "digits_labels.npy", y[test])

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ort_pred = sess.run(None, {"images": x[test]})[0].argmax(1)
    ort_acc = float((ort_pred == y[test]).mean())
    facts = {
        "seed": SEED, "epochs": EPOCHS, "train_images": len(train), "held_out_images": len(test),
        "torch_accuracy": torch_acc, "onnxruntime_accuracy": ort_acc,
        "onnxruntime_correct": int((ort_pred == y[test]).sum()),
    }
    (OUT / "digits.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(json.dumps(facts))


if __name__ == "__main__":
    main()
