#!/usr/bin/env python3
"""tandem bench and llama.cpp (through PyPI's llama-cpp-python) on the same GGUF, in one run.

Local use only, never in CI: `pip install llama-cpp-python` builds llama.cpp from source.

    python3 benches/llamacpp_side_by_side.py MODEL.gguf [-p 64] [-n 32] [-r 3] [-t 2]

Both engines get the same prompt length, generation length, repetitions and threads. llama.cpp
decodes greedily from the prompt logits; its timings come from its own perf counters.
"""
import argparse
import json
import statistics
import subprocess
import time
from pathlib import Path


def tandem(args):
    exe = Path(__file__).resolve().parent.parent / "target/release/tandem"
    out = subprocess.run(
        [str(exe), "bench", "-m", args.model, "-p", str(args.p), "-n", str(args.n),
         "-r", str(args.r), "-t", str(args.t), "--json"],
        check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def llamacpp(args):
    import numpy as np
    from llama_cpp import Llama

    llm = Llama(model_path=args.model, n_ctx=args.p + args.n + 8, n_threads=args.t,
                n_threads_batch=args.t, n_batch=max(args.p, 8), verbose=False)
    n_vocab = llm.n_vocab()

    def argmax_last():
        # Without logits_all, llama.cpp keeps only the last position's logits.
        logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,))
        return int(logits.argmax())

    prompt = [3 + (i * 7919) % (n_vocab - 3) for i in range(args.p)]
    pp, tg = [], []
    for rep in range(args.r + 1):  # one warm-up
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(prompt)
        t1 = time.perf_counter()
        tok = argmax_last()
        for _ in range(args.n - 1):
            llm.eval([tok])
            tok = argmax_last()
        t2 = time.perf_counter()
        if rep:
            pp.append(args.p / (t1 - t0))
            tg.append((args.n - 1) / (t2 - t1))
    return pp, tg


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("-p", type=int, default=64)
    ap.add_argument("-n", type=int, default=32)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("-t", type=int, default=2)
    args = ap.parse_args()

    t = tandem(args)
    pp, tg = llamacpp(args)
    bw, bpt = t["read_bw_bytes_per_s"], t["bytes_per_token"]
    sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
    print(f"{Path(args.model).name}: {bpt / 1e6:.1f} MB read per token, "
          f"read bandwidth {bw / 1e9:.2f} GB/s, {args.t} threads")
    print(f"{'engine':<10} {'pp t/s':>14} {'tg t/s':>14} {'decode GB/s':>12} {'of read bw':>10}")
    print(f"{'tandem':<10} {t['pp_tps']:>8.2f} ±{t['pp_tps_sd']:>5.2f} {t['tg_tps']:>8.2f} ±{t['tg_tps_sd']:>5.2f} "
          f"{t['tg_tps'] * bpt / 1e9:>12.2f} {100 * t['bw_fraction']:>9.1f}%")
    m_tg = statistics.mean(tg)
    print(f"{'llama.cpp':<10} {statistics.mean(pp):>8.2f} ±{sd(pp):>5.2f} {m_tg:>8.2f} ±{sd(tg):>5.2f} "
          f"{m_tg * bpt / 1e9:>12.2f} {100 * m_tg * bpt / bw:>9.1f}%")


if __name__ == "__main__":
    main()
