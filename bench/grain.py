"""Where do threads start to pay? Times each kind of kernel on 1 and 2 threads over a range of
sizes, side by side in one process, and prints the speed-up. The grain sizes in csrc/parallel.h
come from this (the smallest size where 2 threads win clearly, rounded down to a power of two).

    python bench/grain.py [--repeat 7]
"""

import argparse
import time

import numpy as np

import fastact


def best_time(fn, repeat):
    fn()
    t0 = time.perf_counter()
    loops = 0
    while time.perf_counter() - t0 < 0.02:
        fn()
        loops += 1
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(loops):
            fn()
        times.append((time.perf_counter() - t) / loops)
    return float(np.median(times))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    cases = {
        "relu": lambda x, o: fastact.relu(x, out=o),
        "sigmoid_backward": lambda x, o: fastact.sigmoid_backward(x, x, out=o),
        "sigmoid": lambda x, o: fastact.sigmoid(x, out=o),
        "tanh": lambda x, o: fastact.tanh(x, out=o),
        "softmax(rows of 256)": lambda x, o: fastact.softmax(x.reshape(-1, 256), out=o.reshape(-1, 256)),
    }
    sizes = [2**k for k in range(12, 23, 1)]
    print(f"{'function':24s}" + "".join(f"{n:>9d}" for n in sizes))
    saved = fastact.get_num_threads()
    try:
        for name, fn in cases.items():
            row = []
            for n in sizes:
                x = np.random.default_rng(0).standard_normal(n).astype(np.float32)
                o = np.empty_like(x)
                fastact.set_num_threads(1)
                t1 = best_time(lambda: fn(x, o), args.repeat)
                fastact.set_num_threads(2)
                t2 = best_time(lambda: fn(x, o), args.repeat)
                row.append(t1 / t2)
            print(f"{name:24s}" + "".join(f"{r:9.2f}" for r in row))
    finally:
        fastact.set_num_threads(saved)
    print("(speed-up of 2 threads over 1; float32; sizes in elements)")


if __name__ == "__main__":
    main()
