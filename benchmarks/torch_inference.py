"""Inference speed of irbridge's PyTorch exports against the same networks written by hand.

The hand-written nets are irbridge.models.torch_classics (torchvision's architectures); each is
exported to ONNX (one graph per batch size: torch.export fixes it) and converted back to PyTorch by
irbridge, then both run the same seeded input
(eval mode, no_grad, 2 threads). Median of `--repeats` after a warm-up; writes a table into
README.md between `<!-- infer:start/end -->`. Target: the export within 5% of the hand-written net.

    .venv/bin/python benchmarks/torch_inference.py [--nets ...] [--batches 1,32] [--repeats 10]
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
START, END = "<!-- infer:start -->", "<!-- infer:end -->"


def median_ms(fn, x, repeats: int) -> float:
    fn(x)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    import torch
    from irbridge.models.torch_classics import classic

    import irbridge

    ap = argparse.ArgumentParser()
    ap.add_argument("--nets", default="vgg16,resnet50,mobilenet_v2")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(2)
    lines = ["| net | batch | hand-written | irbridge export | ratio |", "|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.nets.split(","):
            hand = classic(name)
            for batch in map(int, args.batches.split(",")):
                # the graph torch.export gives has its batch fixed: one export per batch size
                onnx_path = Path(tmp) / f"{name}_{batch}.onnx"
                irbridge.convert(hand, "onnx", onnx_path, inputs={"x": (batch, 3, 224, 224)})
                exported = irbridge.convert(onnx_path, "torch").exported
                x = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(0))
                with torch.no_grad():
                    a = median_ms(hand, x, args.repeats)
                    b = median_ms(exported, x, args.repeats)
                lines.append(f"| {name} | {batch} | {a:.1f} ms | {b:.1f} ms | {b / a:.2f} |")
                print(lines[-1], flush=True)
    text = "\n".join(lines)
    if not args.no_readme:
        readme = README.read_text()
        if START in readme:
            README.write_text(re.sub(f"{re.escape(START)}.*?{re.escape(END)}", f"{START}\n{text}\n{END}",
                                     readme, flags=re.S))


if __name__ == "__main__":
    main()
