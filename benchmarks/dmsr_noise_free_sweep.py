"""PSNR of DMSR models against bicubic on clean inputs, across blur widths: where does a model lose to bicubic?

For each model (zoo name or exported ``.safetensors``) and the noise-free settings of the presets ``dmsr-nf``
(sigma_k 0.2, the noise-free row of DMSR's Table 1) and ``dmsr-window`` (sigma_k 0.3, 1.2, 2.1, 3.0; DMSR Fig. C.9),
it scores, side by side in one run on the same LR images:

* ``bicubic`` (MATLAB-exact);
* the model, blind (its own kernel and noise estimates);
* with ``--true-kernel``, the model's SR branch given the cell's true kernel and a zero noise map
  (``DMSRNet.restore``): an oracle, not blind SR. If the oracle also loses to bicubic, the kernel estimate is not
  what is wrong; the SR branch is.

PSNR / SSIM on Y (the presets' ``sr-y`` protocol), mean over the images of each dataset. Run from the repository
root::

    python benchmarks/dmsr_noise_free_sweep.py --scale 2 --data-root ../shared/data -m dmsr-x2 --true-kernel
    python benchmarks/dmsr_noise_free_sweep.py --scale 3 --data-root ../shared/data -m a.safetensors b.safetensors

Flags: ``-m MODEL [MODEL ...] --scale S --data-root DIR --datasets Set5 [...] --true-kernel --threads N
--json FILE``. The machine, torch version, threads and date are printed and saved.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from blindsr.degradations.presets import get_eval_preset
from blindsr.eval.benchmark import CellResult, OracleModel, bicubic_model, evaluate
from blindsr.zoo import load_model


def _noise_free_labels(preset_name: str, scale: int) -> set[str]:
    return {s.label for s in get_eval_preset(preset_name).settings_for(scale) if s.label.endswith("-n0")}


def _score(model: Any, args: argparse.Namespace) -> dict[tuple[str, str], CellResult]:
    out: dict[tuple[str, str], CellResult] = {}
    for preset_name in ("dmsr-nf", "dmsr-window"):
        cells = evaluate(
            model,
            get_eval_preset(preset_name),
            data_root=args.data_root,
            datasets=args.datasets,
            scales=[args.scale],
            progress=False,
            settings=_noise_free_labels(preset_name, args.scale),
        )
        out.update({(c.dataset, c.setting): c for c in cells})
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-m", "--models", nargs="+", required=True, help="zoo names or exported .safetensors files")
    p.add_argument("--scale", type=int, required=True)
    p.add_argument("--data-root", required=True, help="folder with <Set>/HR/ benchmark folders")
    p.add_argument("--datasets", nargs="+", default=["Set5"])
    p.add_argument("--true-kernel", action="store_true", help="also score each model given the true kernel")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    machine = {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": args.threads,
    }
    print(" ".join(f"{k}={v}" for k, v in machine.items()), file=sys.stderr)
    t0 = time.perf_counter()
    columns: dict[str, dict[tuple[str, str], CellResult]] = {"bicubic": _score(bicubic_model, args)}
    for name in args.models:
        loaded = load_model(name)
        if loaded.arch != "dmsr":
            p.error(f"{name} is a {loaded.arch} model; this sweep is for DMSR models")
        if loaded.scale != args.scale:
            p.error(f"{name} upscales x{loaded.scale}, not x{args.scale}")
        label = loaded.card.name if loaded.card else Path(name).name
        columns[label] = _score(loaded.upscale, args)
        if args.true_kernel:
            net = loaded.model

            def oracle(lr: torch.Tensor, scale: int, hr: torch.Tensor, kernel: torch.Tensor, net: Any = net) -> Any:
                return net.restore(lr, kernel.to(lr.dtype), torch.zeros_like(lr)).sr

            columns[f"{label} (true kernel)"] = _score(OracleModel(oracle, "the true kernel"), args)
    keys = sorted(columns["bicubic"], key=lambda k: (args.datasets.index(k[0]), float(k[1][1:].split("-")[0])))
    names = list(columns)
    print(f"x{args.scale}, noise-free, PSNR (dB) on Y; in brackets: minus bicubic")
    print("| dataset | setting | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for key in keys:
        base = columns["bicubic"][key].psnr
        row = [f"{columns['bicubic'][key].psnr:.2f}"]
        row += [f"{columns[n][key].psnr:.2f} ({columns[n][key].psnr - base:+.2f})" for n in names[1:]]
        print(f"| {key[0]} | {key[1]} | " + " | ".join(row) + " |")
    print(f"scored in {time.perf_counter() - t0:.0f} s")
    if args.json is not None:
        records = [
            {"model": n, "dataset": k[0], "setting": k[1], "psnr": columns[n][k].psnr, "ssim": columns[n][k].ssim}
            for n in names
            for k in keys
        ]
        args.json.write_text(json.dumps({"machine": machine, "scale": args.scale, "results": records}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
