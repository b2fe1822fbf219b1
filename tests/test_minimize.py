"Integration tests of the minimization: a planted solution is found, a resumed run ends as an uninterrupted one."
import json
import numpy as np, pytest, torch
from selfscale.data import register_task, TASKS
from selfscale.metrics import shortfall, within
from selfscale.minimize import compare_strategies, minimize
from selfscale.rundir import read_log
from selfscale.model import MaskedFCN
from selfscale.settings import load_settings
from selfscale.train import make_run

from tests.common import SMOKE


def test_sobel_ends_strictly_smaller_within_tolerance(tmp_path):
    run = make_run(load_settings('sobel', **SMOKE))
    res = minimize(run, tmp_path, max_trials=6, progress=False)
    assert sum(res['final_structure']) < sum(res['initial_structure'])
    m, log = res['metric'], read_log(tmp_path)
    kept = [d for d in log if d['kept']]
    assert kept and all(shortfall(m, d['after'], d['threshold']) <= 0 for d in kept)
    assert all(shortfall(m, d['after'], d['threshold']) > 0 for d in log if not d['kept'] and not d['diverged'])
    assert all(d['threshold'] == res['threshold'] for d in log)


def test_resumed_run_ends_like_an_uninterrupted_one(tmp_path):
    whole = minimize(make_run(load_settings('sobel', **SMOKE)), tmp_path/'whole', max_trials=5, progress=False)
    minimize(make_run(load_settings('sobel', **SMOKE)), tmp_path/'parts', max_trials=2, progress=False)
    parts = minimize(make_run(load_settings('sobel', **SMOKE)), tmp_path/'parts', max_trials=3, progress=False)
    for k in ('final_structure', 'removed', 'metrics_final', 'decisions', 'parameters'):
        assert parts[k] == whole[k], k
    strip = lambda log: [{k: v for k, v in d.items() if k != 'seconds'} for d in log]
    assert strip(read_log(tmp_path/'parts')) == strip(read_log(tmp_path/'whole'))


def _teacher() -> MaskedFCN:
    "One hidden layer of 2 masks: how far a blurred pixel lies outside the band [0.35, 0.55]."
    t = MaskedFCN((2,), kernel=5)
    g = torch.tensor([1., 4., 6., 4., 1.]); g = g[:, None] * g[None] / 256
    with torch.no_grad():
        t.convs[0].weight[:, 0] = torch.stack([g, -g]); t.convs[0].bias.copy_(torch.tensor([-0.55, 0.35]))
        t.convs[1].weight.zero_(); t.convs[1].weight[0, :, 2, 2] = 2.; t.convs[1].bias.zero_()
    return t.eval()


@pytest.mark.parametrize('strategies', [['ablation', 'cosine_abs_mean']])
def test_planted_teacher_is_found(tmp_path, strategies):
    teacher = _teacher()
    def target(img: np.ndarray) -> np.ndarray:
        with torch.no_grad(): return teacher(torch.from_numpy(img)[None, None]).clamp(0, 1)[0, 0].numpy()
    register_task('planted', target)
    s = load_settings('planted', device='cpu', crop=96, patch=32, batch=16, loss='l2', metric='psnr', steps=300, starts=1,
                      eval_every=50, patience=4, min_steps=300, rounds=3, polish_iters=50, polish_batch=32, tolerance=0.03,
                      verify=0)
    try: rows = compare_strategies(make_run(s), strategies, tmp_path, progress=False)
    finally: del TASKS['planted']
    for row in rows:
        assert len(row['structure']) <= 1 and sum(row['structure']) <= 2, row
        res = json.loads((tmp_path/row['strategy']/'result.json').read_text())
        assert within('psnr', res['metrics_final']['psnr'], res['metrics_reference']['psnr'], res['tolerance']), res
