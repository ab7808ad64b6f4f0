"""Train the US plate OCR (CTC) with a state-of-issue head, on CPU or GPU; export to ONNX.

    nice -n 19 python training/train_ocr.py --out /work/train-out/ocr --steps 6000
    python training/train_ocr.py --out /work/train-out/ocr --export \
        appliance/_recognition/models/us_ocr.onnx

Data: synthetic plates (``synth_plates.py``, generated on the fly in a worker process) and the
training split of ``openalpr-us-crops`` (real, oversampled through the same degradation: scene,
perspective, detector-like crop box, blur, noise, JPEG …). The split is fixed by a hash of the
file name (:func:`held_out`), so every run and the benchmark agree on it; the held-out crops are
only ever used for validation. ``openalpr-us-dev`` is never read here.

The model (:class:`PlateOCR`) is a small CRNN: a VGG-like CNN that collapses the height, a
bidirectional LSTM over the columns and a CTC head over ``BLANK + 0-9A-Z``, plus a state head
(pooled CNN features → 51 states + DC) trained on the real crops' state labels and, with a low
weight, on the state names printed on the synthetic plates. The ONNX export takes a BGR crop
resized to ``HEIGHT × WIDTH`` as float 0..255 (``N×3×H×W``) and normalises it inside the graph.
Checkpoints (``last.pt``, ``best.pt``) stay in ``--out`` so a later run resumes (``--resume``).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synth_plates
from crops import CROPS, held_out, read_crops

HEIGHT, WIDTH = 48, 160
ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"  # CTC class i+1; 0 is the blank
STATES = sorted(synth_plates.STATES)


def to_input(bgr: np.ndarray) -> np.ndarray:
    """A BGR crop → ``3×H×W`` float32 0..255, the model's input."""
    interpolation = cv2.INTER_AREA if bgr.shape[1] > WIDTH else cv2.INTER_LINEAR
    resized = cv2.resize(bgr, (WIDTH, HEIGHT), interpolation=interpolation)
    return np.ascontiguousarray(resized.transpose(2, 0, 1), dtype=np.float32)


def encode(text: str) -> list[int]:
    return [ALPHABET.index(c) + 1 for c in text if c in ALPHABET]


class PlateOCR(nn.Module):
    """CRNN with a CTC head and a state-classification head (~1.3 M parameters)."""

    def __init__(self, states: int = len(STATES)) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> list[nn.Module]:
            return [
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
            ]

        self.stem = nn.Sequential(
            *block(3, 32), nn.MaxPool2d(2),  # 24×80
            *block(32, 64), nn.MaxPool2d(2),  # 12×40
            *block(64, 96), *block(96, 96), nn.MaxPool2d((2, 1)),  # 6×40
            *block(96, 128), *block(128, 128),
        )  # fmt: skip
        self.collapse = nn.Sequential(
            nn.MaxPool2d((2, 1)),  # 3×40
            nn.Conv2d(128, 192, (3, 1), bias=False), nn.BatchNorm2d(192), nn.ReLU(inplace=True),
        )  # fmt: skip
        self.rnn = nn.LSTM(192, 128, bidirectional=True, batch_first=True)
        self.dropout = nn.Dropout(0.2)
        self.chars = nn.Linear(256, len(ALPHABET) + 1)
        self.state = nn.Sequential(nn.Dropout(0.3), nn.Linear(256, states))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Per-image standardisation: exposure and contrast vary more than anything else.
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        std = x.std(dim=(1, 2, 3), keepdim=True) + 8.0
        features = self.stem((x - mean) / std)
        pooled = torch.cat([features.mean(dim=(2, 3)), features.amax(dim=(2, 3))], dim=1)
        columns = self.collapse(features).squeeze(2).permute(0, 2, 1)  # N×T×C
        sequence, _ = self.rnn(columns)
        log_probs = self.chars(self.dropout(sequence)).log_softmax(-1)  # N×T×classes
        return log_probs, self.state(pooled)


class Mixed(IterableDataset):  # type: ignore[type-arg]
    """Endless stream of (input, label ids, state index, state weight); real share ``real``."""

    def __init__(
        self, crops: list[tuple[np.ndarray, str, str]], real: float, seed: int, easy: float = 0.0
    ) -> None:
        self.crops = crops
        self.real = real
        self.seed = seed
        self.easy = easy

    def __iter__(self):  # type: ignore[no-untyped-def]
        info = get_worker_info()
        rng = random.Random(self.seed * 1000 + (info.id if info else 0))
        while True:
            # a share of mildly degraded samples helps CTC out of its early all-blank plateau
            strength = 0.2 if rng.random() < self.easy else 1.0
            if self.crops and rng.random() < self.real:
                image, state, text = rng.choice(self.crops)
                # a few clean ones, most through the same degradation as the synthetic plates
                clean = rng.random() < 0.15
                bgr = image if clean else synth_plates.degrade(rng, image, 320, 160, strength)
                weight = 1.0
            else:
                sample = synth_plates.make_sample(rng, strength=strength)
                bgr, state, text, weight = sample.image, sample.state, sample.text, 0.2
            yield to_input(bgr), text, STATES.index(state), weight


def collate(batch):  # type: ignore[no-untyped-def]
    images = torch.from_numpy(np.stack([b[0] for b in batch]))
    targets = [encode(b[1]) for b in batch]
    lengths = torch.tensor([len(t) for t in targets], dtype=torch.long)
    flat = torch.tensor([i for t in targets for i in t], dtype=torch.long)
    states = torch.tensor([b[2] for b in batch], dtype=torch.long)
    weights = torch.tensor([b[3] for b in batch], dtype=torch.float32)
    return images, flat, lengths, states, weights


def greedy(log_probs: np.ndarray) -> str:
    best = log_probs.argmax(-1)
    chars, previous = [], 0
    for index in best.tolist():
        if index != previous and index != 0:
            chars.append(ALPHABET[index - 1])
        previous = index
    return "".join(chars)


def edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[-1]


def evaluate(model: PlateOCR, crops: list[tuple[np.ndarray, str, str]]) -> dict[str, float]:
    model.eval()
    exact = errors = chars = state_ok = 0
    with torch.no_grad():
        for start in range(0, len(crops), 64):
            chunk = crops[start : start + 64]
            images = torch.from_numpy(np.stack([to_input(c[0]) for c in chunk]))
            log_probs, state_logits = model(images)
            for (_, state, text), lp, sl in zip(
                chunk, log_probs.numpy(), state_logits.numpy(), strict=True
            ):
                read = greedy(lp)
                exact += read == text
                errors += edit_distance(read, text)
                chars += len(text)
                state_ok += STATES[int(sl.argmax())] == state
    model.train()
    n = max(1, len(crops))
    return {"exact": exact / n, "cer": errors / max(1, chars), "state": state_ok / n, "n": n}


def load_split(
    folder: Path,
) -> tuple[list[tuple[np.ndarray, str, str]], list[tuple[np.ndarray, str, str]]]:
    train, valid = [], []
    for name, state, text in read_crops(folder):
        image = cv2.imread(str(folder / name), cv2.IMREAD_COLOR)
        if image is None or state not in STATES:
            continue
        image = cv2.resize(image, (320, 160), interpolation=cv2.INTER_AREA)
        (valid if held_out(name) else train).append((image, state, text))
    return train, valid


def export(model: PlateOCR, path: Path, meta: dict[str, object]) -> None:
    model.eval()
    dummy = torch.zeros(1, 3, HEIGHT, WIDTH)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model, (dummy,), str(path), input_names=["image"],
        output_names=["log_probs", "state_logits"],
        dynamic_axes={"image": {0: "n"}, "log_probs": {0: "n"}, "state_logits": {0: "n"}},
        opset_version=17, dynamo=False,
    )  # fmt: skip
    import onnx

    proto = onnx.load(str(path))
    info = {
        "alphabet": ALPHABET,
        "states": ",".join(STATES),
        "height": str(HEIGHT),
        "width": str(WIDTH),
    }
    info.update({k: str(v) for k, v in meta.items()})
    for key, value in info.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(proto, str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="checkpoint folder")
    parser.add_argument("--crops", type=Path, default=CROPS)
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--real", type=float, default=0.4, help="share of real crops in a batch")
    parser.add_argument("--easy", type=float, default=0.0, help="share of mildly degraded samples")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--eval-every", type=int, default=250)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument(
        "--schedule-from",
        type=int,
        default=0,
        help="step the warm-up and cosine start from (a short fine-tune of a resumed model)",
    )
    parser.add_argument("--warmup", type=int, default=200, help="warm-up steps")
    parser.add_argument("--export", type=Path, help="export best.pt to this ONNX file and stop")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    train, valid = load_split(args.crops)
    # The held-out crops are tight and sharp; the recognizer reads loose, soft detector crops.
    # A fixed degraded copy (half strength, seed 7) scores the checkpoints on that too.
    hard_rng = random.Random(7)
    valid_hard = [(synth_plates.degrade(hard_rng, c[0], 320, 160, 0.5), c[1], c[2]) for c in valid]
    model = PlateOCR()
    if args.export:
        checkpoint = torch.load(args.out / "best.pt", weights_only=False)
        model.load_state_dict(checkpoint["model"])
        metrics = evaluate(model, valid)
        print("held-out", json.dumps(metrics))
        export(
            model,
            args.export,
            {
                "step": checkpoint["step"],
                **{f"heldout_{k}": round(v, 4) for k, v in metrics.items()},
            },
        )
        print(f"exported step {checkpoint['step']} to {args.export}")
        return
    print(
        f"crops: {len(train)} train, {len(valid)} held out; "
        f"params {sum(p.numel() for p in model.parameters())}",
        flush=True,
    )
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    step, best = 0, -1.0
    if args.resume and (args.out / "last.pt").exists():
        checkpoint = torch.load(args.out / "last.pt", weights_only=False)
        model.load_state_dict(checkpoint["model"])
        optimiser.load_state_dict(checkpoint["optimiser"])
        step, best = checkpoint["step"], checkpoint["best"]
        print(f"resumed at step {step} (best held-out exact {best:.3f})", flush=True)
    warmup, origin = args.warmup, args.schedule_from

    def lr_at(step: int) -> float:
        s, span = step - origin, args.steps - origin
        if s < warmup:
            return args.lr * (s + 1) / warmup
        return (
            args.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warmup) / max(1, span - warmup))))
        )

    stream = Mixed(train, args.real, args.seed + step, args.easy)
    loader = DataLoader(stream, batch_size=args.batch, num_workers=args.workers,
                        collate_fn=collate, persistent_workers=args.workers > 0)  # fmt: skip
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    state_loss = nn.CrossEntropyLoss(reduction="none", label_smoothing=0.1)
    started, seen, running = time.time(), 0, 0.0
    for images, flat, lengths, states, weights in loader:
        if step >= args.steps:
            break
        for group in optimiser.param_groups:
            group["lr"] = lr_at(step)
        log_probs, state_logits = model(images)
        steps_t = torch.full((images.shape[0],), log_probs.shape[1], dtype=torch.long)
        loss_chars = ctc(log_probs.permute(1, 0, 2), flat, steps_t, lengths)
        loss_state = (state_loss(state_logits, states) * weights).sum() / weights.sum()
        loss = loss_chars + 0.5 * loss_state
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimiser.step()
        step += 1
        seen += images.shape[0]
        running = 0.98 * running + 0.02 * loss.item() if running else loss.item()
        if step % 50 == 0:
            rate = seen / (time.time() - started)
            print(
                f"step {step} loss {running:.3f} lr {lr_at(step):.5f} {rate:.1f} samples/s",
                flush=True,
            )
        if step % args.eval_every == 0 or step == args.steps:
            metrics = evaluate(model, valid)
            hard = evaluate(model, valid_hard)
            metrics["exact_degraded"] = hard["exact"]
            print(f"step {step} held-out {json.dumps(metrics)}", flush=True)
            score = 0.5 * (metrics["exact"] + hard["exact"]) + 0.25 * metrics["state"]
            state = {"model": model.state_dict(), "optimiser": optimiser.state_dict(), "step": step,
                     "best": max(best, score), "metrics": metrics, "args": vars(args)}  # fmt: skip
            torch.save(state, args.out / "last.pt")
            if score > best:
                best = score
                torch.save(state, args.out / "best.pt")
                print(f"step {step} new best {score:.3f}", flush=True)


if __name__ == "__main__":
    main()
