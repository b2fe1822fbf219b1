"""How far one answer can be trusted: minimize a task from one trained start with other burst seeds, and from other
init seeds, and print one JSON line per run (final structure, parameters, test metric, verification, wall time).

    python bench/trust.py sobel init 0                  # a whole run: train the full net with seed 0, minimize, verify
    python bench/trust.py sobel burst 2 --start runs/trust/sobel-default-init-0/start.pt   # that start, other bursts
    python bench/trust.py sobel again 1 --start runs/trust/sobel-default-init-1/start.pt   # that start, its own bursts
    python bench/trust.py sobel init 3 --preset smoke --set tolerance=0                     # must not shrink
    python bench/trust.py sobel scratch 1 --set widths=4    # the ground truth: one structure trained as a full net is
    python bench/trust.py canny init 0 --set n_eval=4       # any setting; the run folder's name carries it

Run several at once from the shell (one torch thread each); the figures in the README come from these lines."""
import argparse, json, time
from pathlib import Path
import torch
from selfscale.settings import load_settings
from selfscale.train import make_run
from selfscale.decide import trivial_scores
from selfscale.rundir import load_checkpoint
from selfscale.minimize import minimize

def main(task: str, mode: str, seed: int, start: str | None, preset: str, overrides: dict):
    "One minimization; its summary as a JSON line on stdout."
    torch.set_num_threads(1)
    tag = ''.join(f'-{k}{v}' for k, v in overrides.items())
    out, t0 = Path(f'runs/trust/{task}-{preset}-{mode}-{seed}{tag}'), time.time()
    if mode not in ('burst', 'again'): run = make_run(load_settings(task, preset, seed=seed, device='cpu', **overrides))
    else:
        run = load_checkpoint(start, device='cpu')     # again: the search once more, with the code as it is now
        if mode == 'burst': run.batch_gen.manual_seed(10_000 + seed)   # the same trained net, other batches
    res = minimize(run, out, max_trials=0 if mode == 'scratch' else None, progress=False)
    m, v = res['metric'], res['verify'] or {}
    print(json.dumps(dict(task=task, preset=preset, mode=mode, seed=seed, tolerance=res['tolerance'],
                          final=res['final_structure'], parameters=res['parameters'], metric=m,
                          zeros=trivial_scores(run)['all zeros'], val_full=res['metrics_initial'][m],
                          test_full=res['metrics_test_full'][m], test=res['metrics_test'][m],
                          threshold=res['threshold'], noise=res['noise'], verify=v.get('metrics_test'),
                          decisions=res['decisions'],
                          wall_s=round(time.time() - t0))), flush=True)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('task'); p.add_argument('mode', choices=['init', 'burst', 'again', 'scratch'])
    p.add_argument('seed', type=int)
    p.add_argument('--start'); p.add_argument('--preset', default='default')
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='a setting (repeatable)')
    a = p.parse_args()
    main(a.task, a.mode, a.seed, a.start, a.preset, dict(kv.split('=', 1) for kv in a.set))
