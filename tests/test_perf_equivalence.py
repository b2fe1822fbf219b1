"The fast paths change speed only: on the same seed they give the plain path's losses, weights, rankings and decisions."
import os, subprocess, sys, types
import pytest
import torch, torch.nn.functional as F
import fastcore.test as fct
from selfscale.settings import load_settings
from selfscale.data import load_data
from selfscale.model import MaskedFCN, fast_paths, set_enabled, set_frozen, compact
from selfscale.train import make_run, train, evaluate, fit
from selfscale.strategies import ablation_losses
from selfscale.minimize import minimize
from selfscale.rundir import read_log, export_model


@pytest.fixture(scope='module')
def data():
    return load_data('sobel', crop=96, n_eval=3)


def settings(**kw):
    return load_settings('sobel', preset='smoke', device='cpu', **kw)


def trained(fast: bool, data, steps: int = 30):
    "A smoke run with one mask disabled and one frozen, trained `steps` steps and evaluated under `fast`."
    with fast_paths(fast):
        run = make_run(settings(), data)
        set_enabled(run.model, 0, 1, False); set_frozen(run.model, 1, 3)
        train(run, steps, progress=False)
        return run, evaluate(run)


def test_training_same_losses_weights_metrics(data):
    (fast, ef), (plain, ep) = trained(True, data), trained(False, data)
    fct.test_close([h['loss'] for h in fast.history if 'loss' in h],
                   [h['loss'] for h in plain.history if 'loss' in h], eps=1e-5)
    # 30 Adam steps of float noise
    for a, b in zip(fast.model.parameters(), plain.model.parameters()): fct.test_close(a, b, eps=1e-4)
    for k in ('mse', 'mae', 'uiqi'): fct.test_close(ef[k], ep[k], eps=1e-5)
    # frozen on both paths, and no gradient for a disabled mask
    assert torch.equal(fast.model.convs[1].weight[3], plain.model.convs[1].weight[3])
    fct.test_eq(fast.model.convs[0].weight.grad[1].abs().sum().item(), 0.)


def test_fit_same_history(data):
    def history(fast):
        with fast_paths(fast):
            run = make_run(settings(steps=200, rounds=0), data)   # L-BFGS would amplify float rounding
            fit(run, progress=False)
            return [h['eval']['psnr'] for h in run.history if 'eval' in h], run.step
    (a, sa), (b, sb) = history(True), history(False)
    fct.test_eq(sa, sb)
    fct.test_close(a, b, eps=1e-3)


@pytest.mark.parametrize('fast', [True, False])
def test_ablation_batched_equals_loop(fast):
    torch.manual_seed(0)
    m = MaskedFCN((5, 4, 3)); set_enabled(m, 1, 2, False)
    x, y = torch.rand(2, 1, 40, 40), torch.rand(2, 1, 40, 40)
    cands = [(l, k) for l in range(3) for k in range(m.widths[l]) if m.enabled[l][k]]
    with fast_paths(fast):
        a, b = ablation_losses(m, x, y, F.mse_loss, cands), ablation_losses(m, x, y, F.mse_loss, cands, batched=False)
    fct.test_close([a[c] for c in cands], [b[c] for c in cands], eps=1e-6)
    with fast_paths(not fast): other = ablation_losses(m, x, y, F.mse_loss, cands)
    fct.test_close([a[c] for c in cands], [other[c] for c in cands], eps=1e-6)


@pytest.mark.parametrize('fast', [True, False])
def test_ablation_batched_equals_loop_with_clamped_output(fast):
    "The batched ablation clamps the output to [0, 1] as the model does, also where the output crosses both ends."
    torch.manual_seed(0)
    m = MaskedFCN((5, 4))
    with torch.no_grad(): m.convs[-1].weight.mul_(20); m.convs[-1].bias.add_(0.5)
    x, y = torch.rand(2, 1, 40, 40), torch.rand(2, 1, 40, 40)
    out = m(x)
    assert (out == 0).any() and (out == 1).any()
    cands = [(l, k) for l in range(2) for k in range(m.widths[l])]
    with fast_paths(fast):
        a, b = ablation_losses(m, x, y, F.mse_loss, cands), ablation_losses(m, x, y, F.mse_loss, cands, batched=False)
    fct.test_close([a[c] for c in cands], [b[c] for c in cands], eps=1e-6)


def test_compact_same_output_and_exportable(tmp_path):
    torch.manual_seed(0)
    m = MaskedFCN((5, 5)); set_enabled(m, 0, 3, False); set_enabled(m, 1, 0, False)
    x = torch.rand(2, 1, 32, 32)
    with fast_paths(True): small, ref = compact(m), m(x)
    with fast_paths(False): plain = compact(m)
    with torch.no_grad():
        fct.test_close(small(x), ref, eps=1e-5)
        fct.test_close(small(x), plain(x), eps=1e-5)
    export_model(types.SimpleNamespace(model=m), tmp_path/'m.pt2')
    fct.test_close(torch.export.load(tmp_path/'m.pt2').module()(torch.rand(3, 1, 50, 20)).shape, (3, 1, 50, 20))
    fct.test_close(torch.export.load(tmp_path/'m.pt2').module()(x), ref, eps=1e-5)


def test_minimize_same_decisions(data, tmp_path):
    def decisions(fast):
        with fast_paths(fast):
            # one layer: every decision a burst of the batched (or looped) ablation's choice, none a fresh training
            res = minimize(make_run(settings(strategy='ablation', widths=(5,)), data), tmp_path/str(fast), max_trials=3,
                           progress=False)
            # which of two near-tied masks goes may differ (L-BFGS amplifies float rounding); what is kept may not
            log = read_log(tmp_path/str(fast))
            return res['final_structure'], [(e['action'], e['kept'], e['structure']) for e in log]
    (a, log_a), (b, log_b) = decisions(True), decisions(False)
    fct.test_eq(len(log_a), 3)
    fct.test_eq((a, log_a), (b, log_b))


def test_env_switches_fast_paths_off():
    code = 'import selfscale.model as m; print(m.FAST)'
    out = lambda v: subprocess.run([sys.executable, '-c', code], env={**os.environ, 'SELFSCALE_FAST': v},
                                   capture_output=True, text=True, check=True).stdout.strip()
    fct.test_eq((out('0'), out('1')), ('False', 'True'))
