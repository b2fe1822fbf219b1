#!/usr/bin/env python
"""selfscale's benchmark: every performance figure as a ratio of two things measured side by side in one run.

    python bench/bench.py            # the full table (about 6 minutes on 2 CPU cores)
    python bench/bench.py --quick    # the same table from fewer repetitions and 2,000 synthetic images (about 1 minute)
    python bench/bench.py --e2e      # adds the end-to-end papermill runs of nbs/minimize.ipynb (long)
    python bench/bench.py --oracle   # adds the oracle's Ray trials: 2 at a time vs 1, early stopping vs none (minutes)
    python bench/bench.py --parallel # adds minimize, 2 trials at a time vs 1 (--preset smoke: a minute; default: long)
    python bench/bench.py --parallel --only 7 --start runs/trust/sobel-default-init-0/start.pt   # from a saved start
    python bench/bench.py --device cuda

Timings of the things compared are interleaved round by round and the fastest round of each counts, so a machine that
is busy with something else disturbs both sides alike and as little as it can; the load average is printed with the
table (the papermill and oracle runs, minutes each, are timed once). The fast paths are compared with the plain code
they replace through `selfscale.model.fast_paths`, and, for the papermill runs, the environment variable
SELFSCALE_FAST=0.
"""
from __future__ import annotations
import argparse, json, os, platform, resource, subprocess, sys, tempfile, threading, time
from dataclasses import dataclass
from pathlib import Path
import cv2, numpy as np, torch, torch.nn as nn, torch.nn.functional as F

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from selfscale.settings import load_settings
from selfscale.data import load_data, get_task, embedded_images, resolve_device
from selfscale.model import MaskedFCN, compact, set_enabled, flops_per_pixel, fast_paths
from selfscale.train import make_run, train
from selfscale.strategies import ablation_losses
from selfscale.viz import markdown_table
import selfscale.train

TASK = 'sobel'

# ---------------------------------------------------------------------------------------------------------------- table
@dataclass
class Row:
    "One line of the table: `ratio` is ours over the baseline (or its inverse for times), `goal` its target."
    figure: str
    ours: str
    baseline: str
    ratio: float
    goal: str
    met: bool | None
    note: str = ''

def fmt_ratio(r: float) -> str: return f'{r:.2f}×' if r >= 0.995 or r == 0 else f'{r:.0%}'

def table(rows: list[Row]) -> str:
    "The rows as a Markdown table."
    mark = {True: 'yes', False: '**no**', None: '—'}
    return markdown_table(['figure', 'ours', 'baseline', 'ratio', 'goal', 'met?'],
                          [[r.figure, r.ours, r.baseline, fmt_ratio(r.ratio), r.goal, mark[r.met]] for r in rows])

# --------------------------------------------------------------------------------------------------------------- timing
def sync(device: torch.device):
    if device.type == 'cuda': torch.cuda.synchronize(device)

def timed(fn, device: torch.device) -> float:
    "Seconds `fn()` takes, the device drained before and after."
    sync(device); t = time.perf_counter(); fn(); sync(device)
    return time.perf_counter() - t

def rounds(fns: dict, n: int, device: torch.device) -> dict:
    """Fastest seconds of each of `fns` over `n` rounds (after a warm-up), interleaved round by round
    (the least disturbed)."""
    for fn in fns.values(): fn()
    best = dict.fromkeys(fns, float('inf'))
    for _ in range(n):
        for k, fn in fns.items(): best[k] = min(best[k], timed(fn, device))
    return best

def matmul(device: torch.device, n: int = 2048, reps: int = 3):
    "A function doing `reps` fp32 n×n matrix products; its FLOPs."
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    def fn():
        for _ in range(reps): a @ b
    return fn, 2 * n ** 3 * reps

# ------------------------------------------------------------------------------------------------------------- figure 1
class NaiveLoop:
    """Training written the obvious way: an nn.Sequential in NCHW fp32; every step reads, decodes and crops its images
    and computes their targets."""
    def __init__(self, paths: list, widths, kernel: int, batch: int, crop: int, device: torch.device, seed: int = 0):
        chans, layers = [1, *widths, 1], []
        for i, o in zip(chans, chans[1:]): layers += [nn.Conv2d(i, o, kernel, padding=kernel // 2), nn.ReLU()]
        torch.manual_seed(seed)
        self.model = nn.Sequential(*layers).to(device)
        self.opt = torch.optim.Adam(self.model.parameters(), 3e-3)
        self.paths, self.batch, self.crop, self.device = paths, batch, crop, device
        self.rng, self.target = np.random.default_rng(seed), get_task(TASK).fn

    def read(self, path) -> np.ndarray:
        img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        pad = [max(self.crop - s, 0) for s in img.shape]
        img = cv2.copyMakeBorder(img, 0, pad[0], 0, pad[1], cv2.BORDER_REFLECT)
        top, left = (self.rng.integers(s - self.crop + 1) for s in img.shape)
        return img[top:top + self.crop, left:left + self.crop]

    def step(self) -> float:
        xs = [self.read(self.paths[i]) for i in self.rng.integers(len(self.paths), size=self.batch)]
        ys = [self.target(x) for x in xs]
        x = torch.from_numpy(np.stack(xs))[:, None].to(self.device)
        y = torch.from_numpy(np.stack(ys))[:, None].to(self.device)
        loss = F.mse_loss(self.model(x), y)
        self.opt.zero_grad(); loss.backward(); self.opt.step()
        return loss.item()

def bench_training(device, quick: bool, ds) -> list[Row]:
    """Figure 1: megapixels/s of `train` (fast and plain paths) vs the naive loop, and as a fraction of the fp32
    matmul rate."""
    s = load_settings(TASK, batch=32, patch=256, crop=256, device=str(device))
    fast, plain = make_run(s, ds), make_run(s, ds)
    naive = NaiveLoop(embedded_images(), s.widths, s.kernel, s.batch, s.patch, device)
    n = 3 if quick else 6
    mm, mm_flops = matmul(device)
    def ours():
        with fast_paths(True): train(fast, 1, progress=False)
    def ours_plain():
        with fast_paths(False): train(plain, 1, progress=False)
    t = rounds({'mm': mm, 'ours': ours, 'plain': ours_plain, 'naive': naive.step}, n, device)
    px = s.batch * s.patch ** 2 / 1e6
    mps = {k: px / t[k] for k in ('ours', 'plain', 'naive')}
    gflops = mm_flops / t['mm'] / 1e9
    net = 3 * flops_per_pixel(fast.model)                       # forward + backward ≈ 3 × forward
    frac = mps['ours'] * 1e6 * net / (gflops * 1e9)
    return [Row('1a training throughput, batch 32×256² (MP/s): train() vs naive loop', f"{mps['ours']:.2f}",
                f"{mps['naive']:.2f}", mps['ours'] / mps['naive'], '≥ 3×', mps['ours'] / mps['naive'] >= 3),
            Row('1b training vs fp32 2048² matmul (GFLOP/s, net FLOPs × 3)', f"{mps['ours'] * net / 1e3:.1f}",
                f'{gflops:.1f}', frac, '≥ 40%', frac >= 0.4),
            Row('1c train(), fast paths vs plain path (MP/s)', f"{mps['ours']:.2f}", f"{mps['plain']:.2f}",
                mps['ours'] / mps['plain'], '—', None),
            *bench_threads(device, quick, ds)]

def bench_threads(device, quick: bool, ds) -> list[Row]:
    """Figure 1d: a default-preset step (16×64²) with the fast paths' thread count vs every core
    (information, no goal)."""
    if device.type != 'cpu': return []
    s = load_settings(TASK, device=str(device))
    run, k = make_run(s, ds), 20
    def every_core():
        with selfscale.train.threads_for(torch.get_num_threads() * selfscale.train.PIXELS_PER_THREAD):
            for _ in range(k): _step(run)
    def policy():
        with selfscale.train.threads_for(s.batch * s.patch ** 2):
            for _ in range(k): _step(run)
    t = rounds({'policy': policy, 'all': every_core}, 3 if quick else 6, device)
    with selfscale.train.threads_for(s.batch * s.patch ** 2): used = torch.get_num_threads()
    return [Row(f'1d default step 16×64² (ms): {used} thread(s) (fast paths) vs {torch.get_num_threads()}',
                f"{t['policy'] / k * 1e3:.1f}", f"{t['all'] / k * 1e3:.1f}", t['all'] / t['policy'], '—', None)]

def _step(run):
    "One training step of `run` exactly as `train` takes it, without `train`'s own thread choice."
    s, m, opt = run.settings, run.model, run.optimizer
    x, y = run.data.batch(run.batch_gen, s.batch, s.patch)
    loss = run.loss_fn(m(x), y)
    opt.zero_grad(set_to_none=True); loss.backward(); opt.step()

# ------------------------------------------------------------------------------------------------------------- figure 2
def bench_ranking(device, quick: bool, ds) -> list[Row]:
    "Figure 2: ablation of the 10 hidden masks of the default net, batched vs one evaluation per candidate."
    model = MaskedFCN((5, 5), 5, generator=torch.Generator().manual_seed(0)).to(device)
    x, y = ds.eval_batch()
    cands = [(l, m) for l in range(2) for m in range(5)]
    res = {}
    def run(batched):
        def fn(): res[batched] = ablation_losses(model, x, y, F.mse_loss, cands, batched=batched)
        return fn
    t = rounds({'batched': run(True), 'loop': run(False)}, 3 if quick else 8, device)
    a, b = np.array([res[True][c] for c in cands]), np.array([res[False][c] for c in cands])
    same = bool(np.allclose(a, b, rtol=1e-4, atol=1e-7))
    if not same: raise AssertionError(f'batched ablation differs from the loop: {a} vs {b}')
    r = t['loop'] / t['batched']
    return [Row('2 ablation ranking, 10 candidates on 4×256²: batched vs loop (ms)', f"{t['batched'] * 1e3:.0f}",
                f"{t['loop'] * 1e3:.0f}", r, '≥ 3×, same losses', r >= 3 and same)]

# ------------------------------------------------------------------------------------------------------------- figure 3
def bench_compaction(device, quick: bool) -> list[Row]:
    "Figure 3: inference of the compacted minimal net vs the masked full net, against their FLOP ratio."
    full = MaskedFCN((5, 5), 5, generator=torch.Generator().manual_seed(0)).to(device).eval()
    # widths 3,2: ~1/3 of the FLOPs
    for l, m in [(0, 3), (0, 4), (1, 2), (1, 3), (1, 4)]: set_enabled(full, l, m, False)
    small = compact(full).eval()
    flop_ratio = flops_per_pixel(MaskedFCN((5, 5), 5)) / flops_per_pixel(full)
    x = torch.rand(16, 1, 256, 256, device=device)
    with torch.no_grad():
        if not torch.allclose(small(x), full(x), atol=1e-5):
            raise AssertionError('compacted net differs from the masked net')
        t = rounds({'small': lambda: small(x), 'full': lambda: full(x)}, 3 if quick else 8, device)
    r, goal = t['full'] / t['small'], 0.7 * flop_ratio
    return [Row(f'3 compacted (3,2) vs masked (5,5) net, inference (ms); FLOP ratio {flop_ratio:.2f}',
                f"{t['small'] * 1e3:.0f}", f"{t['full'] * 1e3:.0f}", r, f'≥ 0.7 × {flop_ratio:.2f} = {goal:.2f}×',
                r >= goal)]

# ------------------------------------------------------------------------------------------------------------- figure 4
def papermill(nb: Path, out: Path, preset: str, fast: bool, device, timeout: float) -> float:
    "Wall seconds of `papermill nb` on canny with `preset`, fast paths on or off; `inf` past `timeout`."
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'} | {'SELFSCALE_FAST': '1' if fast else '0'}
    cmd = [str(Path(sys.executable).parent / 'papermill'), str(nb), str(out / f'{preset}_{int(fast)}.ipynb'),
           '-p', 'task', 'canny', '-p', 'preset', preset, '-p', 'out_dir', str(out / f'{preset}_{int(fast)}'),
           '-p', 'device', str(device), '--no-progress-bar']
    t = time.perf_counter()
    try: subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired: return float('inf')
    return time.perf_counter() - t

def bench_e2e(device, quick: bool, timeout: float) -> list[Row]:
    """Figure 4: end-to-end papermill runs of nbs/minimize.ipynb on canny (smoke, and default unless quick),
    fast vs plain."""
    nb = ROOT / 'nbs' / 'minimize.ipynb'
    if not nb.exists(): return [Row('4 end to end: nbs/minimize.ipynb', 'missing', '—', 0, '—', None)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for preset, limit in [('smoke', 60)] + ([] if quick else [('default', 600)]):
            fast = papermill(nb, Path(tmp), preset, True, device, timeout)
            plain = papermill(nb, Path(tmp), preset, False, device, timeout)
            secs = lambda t: f'{t:.0f}' if t < float('inf') else f'> {timeout:.0f} (stopped)'
            ratio = plain / fast if plain < float('inf') else timeout / fast
            rows.append(Row(f'4 papermill minimize canny, preset {preset}: wall s, fast vs plain', secs(fast),
                            secs(plain), ratio, f'≤ {limit} s', fast <= limit))
    return rows

# ------------------------------------------------------------------------------------------------------------- figure 5
def synthetic_folder(folder: Path, n: int, size: int = 256, seed: int = 0):
    "`n` JPEGs of smooth random shapes and texture, `size`×`size`, in `folder`."
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        img = cv2.resize(rng.random((16, 16), np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
        img = np.clip(img * 200 + rng.normal(0, 8, (size, size)), 0, 255).astype(np.uint8)
        for _ in range(3):
            c = tuple(int(v) for v in rng.integers(0, size, 2))
            cv2.circle(img, c, int(rng.integers(8, size // 3)), int(rng.integers(256)), -1)
        sub = folder / f'{i // 1000:02d}'
        sub.mkdir(exist_ok=True)
        cv2.imwrite(str(sub / f'{i:05d}.jpg'), cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])

def naive_preprocess(paths: list, crop: int = 256) -> None:
    "Decode, crop and compute the target of every file, one after the other (the baseline of the preprocessing rate)."
    fn = get_task(TASK).fn
    for p in paths:
        img = cv2.imread(str(p), cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255
        fn(img[:crop, :crop])

def peak_rss() -> int:
    "Peak resident memory of this process in bytes, file-backed pages (a memory-mapped cache) included."
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

class PeakAnon:
    """Peak anonymous resident memory (RssAnon in /proc/self/status: what the process needs, mapped files left out),
    sampled."""
    def __init__(self, every: float = 0.02):
        self.peak, self.every, self.stop = 0, every, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True); self.thread.start()
    def sample(self):
        kb = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('RssAnon:'))
        self.peak = max(self.peak, kb * 1024)
    def run(self):
        while not self.stop.wait(self.every): self.sample()
    def done(self) -> int:
        self.stop.set(); self.thread.join(); self.sample()
        return self.peak

def data_worker(folder: str, cache: str, device: str, steps: int):
    """Subprocess: load (preprocess or read the cache of) `folder`, train `steps` steps, print seconds and peak memory
    as JSON."""
    anon = PeakAnon()
    t = time.perf_counter()
    ds = load_data(TASK, data_dir=folder, cache_dir=cache, crop=256, device=device)
    t_load = time.perf_counter() - t
    for batch, patch in [(16, 64), (32, 256)]:
        train(make_run(load_settings(TASK, batch=batch, patch=patch, device=device), ds), steps, progress=False)
    print(json.dumps({'n': len(ds), 'load_s': t_load, 'rss': peak_rss(), 'anon': anon.done(), 'on_disk': ds.on_disk}))

def run_worker(*args) -> dict:
    out = subprocess.run([sys.executable, __file__, '--worker', *map(str, args)], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])

def bench_data(device, quick: bool, ds) -> list[Row]:
    "Figure 5: data waiting time per step, preprocessing rate and peak memory on a synthetic folder of JPEGs."
    rows = []
    gen = torch.Generator().manual_seed(0)
    for batch, patch, n in [(32, 256, 2), (16, 64, 20)]:
        run = make_run(load_settings(TASK, batch=batch, patch=patch, device=str(device)), ds)
        def data():
            with selfscale.train.threads_for(batch * patch ** 2):
                for _ in range(n): ds.batch(gen, batch, patch)
        t = rounds({'data': data, 'train': lambda: train(run, n, progress=False)}, 3 if quick else 6, device)
        frac = t['data'] / t['train']
        rows.append(Row(f'5a batch sampling vs whole training step, batch {batch}×{patch}² (ms per step)',
                        f"{t['data'] / n * 1e3:.1f}", f"{t['train'] / n * 1e3:.1f}", frac, '≤ 5%', frac <= 0.05))
    n_img = 2000 if quick else 20000
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp) / 'images', Path(tmp) / 'cache'
        synthetic_folder(folder, n_img)
        paths = sorted(folder.rglob('*.jpg'))
        t_naive = timed(lambda: naive_preprocess(paths[:300]), torch.device('cpu')) / 300
        cold = run_worker(folder, cache, device, 5 if quick else 20)
        warm = run_worker(folder, cache, device, 5 if quick else 20)
    rate, data_gib = cold['n'] / cold['load_s'], n_img * 2 * 256 ** 2 * 2 / 2 ** 30
    rows.append(Row(f'5b preprocessing {n_img:,} JPEGs 256² (images/s): load_data vs one-by-one loop',
                    f'{rate:.0f}', f'{1 / t_naive:.0f}', rate * t_naive, '≥ 200 images/s', rate >= 200))
    gib = lambda r: f"{r['anon'] / 2 ** 30:.2f} (RSS {r['rss'] / 2 ** 30:.2f})"
    for name, r in [('training from the cache', warm), ('preprocessing (cold cache), then training', cold)]:
        rows.append(Row(f'5{"cd"[r is cold]} peak memory (GiB), {name}: anonymous (RSS with the mapped cache) vs the '
                        f'preprocessed set ({data_gib:.1f} GiB float16)', gib(r), f'{data_gib:.2f}',
                        r['anon'] / 2 ** 30 / data_gib, '≤ 4 GiB', r['anon'] <= 4 * 2 ** 30))
    return rows

# ------------------------------------------------------------------------------------------------------------- figure 6
def oracle_run(s, **kw) -> tuple[dict, float]:
    "The oracle of `s` (2 seeds) in a fresh temporary folder, quietly; it and its wall seconds."
    from selfscale.oracle import oracle    # Ray only here: the data worker's memory stays what it measures
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        o = oracle(s, seeds=2, out_dir=tmp, progress=False, **kw)
        return o, time.perf_counter() - t

def final_metrics(o: dict) -> np.ndarray:
    "The validation and test metric of every training, (structure, val/test, seed), in the oracle's order (NaN: none)."
    return np.array([[r['metrics'], r['metrics_test']] for r in o['structures']], dtype=float)

def metric_gaps(a: dict, b: dict) -> np.ndarray:
    "Absolute differences of `final_metrics` between two oracles of the same trainings (inf where not alike)."
    x, y = final_metrics(a), final_metrics(b)
    alike = [r['widths'] for r in a['structures']] == [r['widths'] for r in b['structures']] and \
        np.array_equal(np.isnan(x), np.isnan(y))
    return np.nan_to_num(np.abs(x - y)) if alike else np.full(x.shape, np.inf)

def bench_oracle(quick: bool) -> list[Row]:
    "Figure 6: the oracle's trials 2 at a time vs one after another, and with its early stopping vs without."
    from selfscale.sweep import start_ray
    widths = (2, 2) if quick else (3, 3)
    s = load_settings(TASK, preset='smoke', widths=widths, device='cpu')
    start_ray(workers=2)                   # before the clocks start, with the CPUs every variant asks for
    par, t_par = oracle_run(s, workers=2, threads=1, early_stop=False)
    seq, t_seq = oracle_run(s, workers=1, threads=2, early_stop=False)
    one, t_one = oracle_run(s, workers=1, threads=1, early_stop=False)
    asha, _ = oracle_run(s, workers=2, threads=1)
    if any(any(r['stopped']) for o in (par, seq, one) for r in o['structures']):
        raise AssertionError('early_stop=False stopped a training')
    gaps, speed = metric_gaps(par, one), t_seq / t_par
    n, diff, differ = gaps[:, 0].size, float(gaps.max()), int((gaps > 1e-6).any(1).sum())
    what = f"{n} trainings of {list(widths)}'s sub-structures (smoke)"
    small = lambda o: f"{o['smallest']['widths']} ({o['smallest']['params']})" if o['smallest'] else 'none'
    same, r_time = small(asha) == small(par), par['train_seconds'] / asha['train_seconds']
    return [Row(f'6a oracle, {what}, none stopped, wall s: 2 trials at a time × 1 thread vs one at a time × 2',
                f'{t_par:.0f}', f'{t_seq:.0f}', speed, '≥ 1.6×', speed >= 1.6,
                note=f'one at a time × 1 thread: {t_one:.0f} s; the smoke batches run on 1 thread either way'),
            Row(f'6b oracle, {what}: largest difference of the final val and test metrics, one at a time vs 2 at a time'
                ' (1 thread each)', f'{diff:.1e} ({differ} of {n} differ)', '—', diff, '≤ 1e-6', diff <= 1e-6),
            Row('6c oracle training time (s, summed over trials): early stopping vs every structure to the end',
                f"{asha['train_seconds']:.0f}", f"{par['train_seconds']:.0f}", r_time, '≥ 2×', r_time >= 2),
            Row("6d oracle's smallest structure within tolerance (params): early stopping vs every one to the end",
                small(asha), small(par), float(same), 'the same', same)]

# ------------------------------------------------------------------------------------------------------------- figure 7
def same_decisions(a: list, b: list) -> bool:
    "Do two decision logs hold the same changes, outcomes and structures, the metric after each within 1e-6?"
    keys = ('i', 'action', 'layer', 'mask', 'kept', 'structure')
    return len(a) == len(b) and all([x.get(k) for k in keys] == [y.get(k) for k in keys] and
                                    np.isclose(x['after'], y['after'], rtol=0, atol=1e-6, equal_nan=True)
                                    for x, y in zip(a, b))

def bench_parallel(preset: str, device, checkpoint: str | None = None) -> list[Row]:
    "Figure 7: minimize sobel (seed 0) from one trained start (fitted here, or `checkpoint`), 2 trials at a time vs 1."
    from dataclasses import replace
    from selfscale.minimize import minimize
    from selfscale.rundir import read_log, load_checkpoint
    from selfscale.sweep import start_ray
    from selfscale.train import fit, snapshot, restore
    if checkpoint:
        trained = load_checkpoint(checkpoint, device=str(device))
        s, preset = trained.settings, Path(checkpoint).parent.name
    else:
        s = load_settings(TASK, preset=preset, device=str(device), seed=0)
        trained = make_run(s)
        fit(trained, progress=False)
    start, got = snapshot(trained), {}
    start_ray(workers=2)                   # before the clocks start
    with tempfile.TemporaryDirectory() as tmp:
        for k in (1, 2):
            run = restore(make_run(replace(s, parallel_trials=k), trained.data), start)
            t = time.perf_counter()
            res = minimize(run, Path(tmp) / str(k), progress=False)
            got[k] = res, read_log(Path(tmp) / str(k)), time.perf_counter() - t
    (one, log1, t1), (two, log2, t2) = got[1], got[2]
    same = one['final_structure'] == two['final_structure'] and same_decisions(log1, log2)
    what = f'minimize sobel seed 0 ({preset}) from one trained start, {len(log1)} decisions'
    return [Row(f'7a {what}, wall s: 2 trials at a time vs one at a time', f'{t2:.0f}', f'{t1:.0f}', t1 / t2, '—',
                None, note=f"search seconds {two['seconds']:.0f} vs {one['seconds']:.0f}"),
            Row(f'7b {what}: final structure, and the decision log with `after` within 1e-6',
                str(two['final_structure']), str(one['final_structure']), float(same), 'the same', same)]

# ---------------------------------------------------------------------------------------------------------------- main
def machine(device: torch.device) -> str:
    "A one-line description of where the benchmark ran."
    if device.type == 'cuda': return f'{torch.cuda.get_device_name(device)}, torch {torch.__version__}'
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')),
               platform.processor())
    return f'{cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}'

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--quick', action='store_true', help='fewer repetitions and 2,000 synthetic images (about a minute)')
    p.add_argument('--device', default='auto', help="auto, cpu or cuda")
    p.add_argument('--e2e', action='store_true', help='also time papermill runs of nbs/minimize.ipynb (long)')
    p.add_argument('--e2e-timeout', type=float, default=1800, help='stop a papermill run after this many seconds')
    p.add_argument('--oracle', action='store_true', help="also time the oracle's Ray trials (figure 6, minutes)")
    p.add_argument('--threads', type=int,
                   help="torch's intra-op threads (default: torch's own); 1 steadies the ratios on a shared machine")
    p.add_argument('--parallel', action='store_true', help='also minimize with 2 trials at a time vs 1 (figure 7)')
    p.add_argument('--preset', default='default', help="figure 7's preset (default: ~20+ min a run; smoke: ~1 min)")
    p.add_argument('--start', help="figure 7 from this trained start (a run folder's start.pt) instead of a fit")
    p.add_argument('--only', default='1,2,3,4,5,6,7', help='comma-separated figures to run, e.g. 1,3')
    p.add_argument('--json', help='also write the rows as JSON to this file')
    p.add_argument('--worker', nargs=4, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.worker: return data_worker(a.worker[0], a.worker[1], a.worker[2], int(a.worker[3]))
    device, only = resolve_device(a.device), set(a.only.split(','))
    if a.threads: torch.set_num_threads(a.threads)
    print(f'# selfscale benchmark{" (quick)" if a.quick else ""} on {machine(device)}', flush=True)
    load0, t0 = os.getloadavg()[0], time.time()
    ds = load_data(TASK, crop=256, device=device)
    rows = []
    steps = [('1', lambda: bench_training(device, a.quick, ds)), ('2', lambda: bench_ranking(device, a.quick, ds)),
             ('3', lambda: bench_compaction(device, a.quick)),
             ('4', lambda: bench_e2e(device, a.quick, a.e2e_timeout) if a.e2e else []),
             ('5', lambda: bench_data(device, a.quick, ds)),
             ('6', lambda: bench_oracle(a.quick) if a.oracle else []),
             ('7', lambda: bench_parallel(a.preset, device, a.start) if a.parallel else [])]
    for fig, fn in steps:
        if fig not in only: continue
        t = time.time()
        out = fn()
        rows += out
        print(f'figure {fig}: {time.time() - t:.0f} s', file=sys.stderr, flush=True)
    print(table(rows))
    print(f'{time.time() - t0:.0f} s; load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end')
    if a.json: Path(a.json).write_text(json.dumps([r.__dict__ for r in rows], indent=1))

if __name__ == '__main__': main()
