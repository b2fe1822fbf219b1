"papermill runs of the oracle app (nbs/oracle.ipynb): smoke-sized on a local Ray with 2 CPUs."
import json, math
from pathlib import Path
import papermill as pm
import pytest
import fastcore.test as fct
from tests.common import ROOT
from selfscale.metrics import within
from selfscale.model import MaskedFCN, n_params, flops_per_pixel

PARAMS = {'task', 'widths', 'seeds', 'preset', 'tolerance', 'data_dir', 'out_dir', 'address', 'workers', 'steps',
          'max_params'}
TINY = dict(task='sobel', preset='smoke', widths='2,2', seeds=2, steps=60, workers=2)
SUBS = [[1], [1, 1], [2], [1, 2], [2, 1], [2, 2]]


def run_oracle(tmp: Path, name: str, **params):
    "Execute nbs/oracle.ipynb with papermill into `tmp/name` (outside nbs/)."
    pm.execute_notebook(str(ROOT/'nbs/oracle.ipynb'), str(tmp/name), parameters=params, kernel_name='python3',
                        cwd=str(ROOT), progress_bar=False)


def test_parameters_documented():
    "papermill finds every parameter (the `parameters` tag survived nbdev-clean), each with its help."
    params = pm.inspect_notebook(str(ROOT/'nbs/oracle.ipynb'))
    fct.test_eq(set(params), PARAMS)
    assert all(p['help'] for p in params.values())


def test_oracle_app_writes_every_substructure(tmp_path):
    """Every sub-structure of [2, 2] is in oracle.json with its size and metrics (a rerun that trains nothing is tested
    in-process, in 09a_oracle)."""
    out = tmp_path/'out'
    run_oracle(tmp_path, 'oracle.ipynb', out_dir=str(out), **TINY)
    o = json.loads((out/'oracle.json').read_text())
    fct.test_eq((o['task'], o['preset'], o['widths'], o['metric'], o['seeds']),
                ('sobel', 'smoke', [2, 2], 'psnr', [0, 1]))
    fct.test_eq([r['widths'] for r in o['structures']], SUBS)
    for r in o['structures']:
        net = MaskedFCN(tuple(r['widths']), 5)
        fct.test_eq((r['params'], r['flops']), (n_params(net), flops_per_pixel(net)))
        fct.test_eq([len(r[k]) for k in ('metrics', 'metrics_test', 'stopped')], [2, 2, 2])
        assert set(r['stopped']) <= {None, 'hopeless', 'cannot win'} and r['within'] in (True, False, None)
        if not any(r['stopped']):      # trained to the end: every number is there, and `within` is decided
            assert all(math.isfinite(v) for v in r['metrics'] + r['metrics_test'])
            fct.test_close(r['mean'], sum(r['metrics']) / 2)
            fct.test_close(r['spread'], abs(r['metrics'][0] - r['metrics'][1]))
            fct.test_eq(r['within'], within('psnr', r['mean'], o['reference'], o['tolerance']))
    full = o['structures'][-1]
    fct.test_eq((full['stopped'], full['within']), ([None, None], True))
    fct.test_close(full['mean'], o['reference'])
    best = o['smallest']
    fct.test_eq(best['params'], min(r['params'] for r in o['structures'] if r['within']))
    assert best['params'] <= full['params'] and within('psnr', best['mean'], o['reference'], o['tolerance'])
    for r in o['structures']:
        if 'cannot win' in r['stopped']: assert r['params'] > best['params'], r
    assert (out/'oracle.png').stat().st_size > 0 and o['train_seconds'] > 0


def test_bad_seeds(tmp_path):
    "A bad parameter is refused with one line, before Ray starts."
    with pytest.raises(pm.PapermillExecutionError, match='seeds must be a positive integer'):
        run_oracle(tmp_path, 'bad.ipynb', out_dir=str(tmp_path/'out'), **{**TINY, 'seeds': 0})
    assert not (tmp_path/'out').exists()
