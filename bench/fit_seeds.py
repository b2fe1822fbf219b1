"""How the same full net trains across init seeds: `fit` as the search's reference is trained, one JSON line per seed
(validation and test metric, every start's figure, the curve after the kept start, where a 3-round convergence
window would have stopped it, wall time).

    python bench/fit_seeds.py sobel 0 2 4 & python bench/fit_seeds.py sobel 1 3   # seeds 0-4 on 2 cores
    python bench/fit_seeds.py canny 0 1 --set starts=3                            # any setting

Run from the repository root; the figures of *How far an answer can be trusted* in the README come from these lines."""
import argparse, json, time
import torch
from selfscale.settings import load_settings
from selfscale.train import make_run, evaluate, converged
from selfscale.decide import train_from_scratch

def stopped_at(metric: str, curve: list, frac: float, window: int) -> int:
    "How many rounds of `curve` a convergence `window` would have let run (the curve is its prefix)."
    return next((n for n in range(1, len(curve) + 1) if converged(metric, curve[:n], frac, window)), len(curve))

def main(task: str, seeds: list, overrides: dict):
    "Train the full net of `task` with each seed as `minimize` trains its reference; a JSON line each."
    torch.set_num_threads(1)
    for seed in seeds:
        t0, curve = time.time(), []
        s = load_settings(task, seed=seed, device='cpu', **overrides)
        run = make_run(s)
        train_from_scratch(run, on_eval=lambda e: curve.append(round(e[s.metric], 4)))
        val, test = (evaluate(run, record=False, part=p)[s.metric] for p in ('val', 'test'))
        kept = next((h['event'] for h in run.history if ' kept (' in h.get('event', '')), None)
        at3 = stopped_at(s.metric, curve, s.tolerance / 10, 3)
        print(json.dumps(dict(task=task, seed=seed, starts=s.starts, val=round(val, 3), test=round(test, 3), kept=kept,
                              curve=curve, window3_stops_at=at3, window3_value=curve[at3 - 1],
                              seconds=round(time.time() - t0))), flush=True)

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('task'); p.add_argument('seeds', type=int, nargs='+')
    p.add_argument('--set', action='append', default=[], metavar='KEY=VALUE', help='a setting (repeatable)')
    a = p.parse_args()
    main(a.task, a.seeds, dict(kv.split('=', 1) for kv in a.set))
