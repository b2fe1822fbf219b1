"papermill runs of the app notebooks: minimize.ipynb (canny, resumed; bad parameters) and compare.ipynb, smoke-sized."
import json
from pathlib import Path
import papermill as pm
import pytest, torch
import fastcore.test as fct
from tests.common import ROOT

PARAMS = {'task', 'data_dir', 'out_dir', 'widths', 'strategy', 'tolerance', 'seed', 'device', 'preset', 'max_trials',
          'verify', 'oracle'}
KEYS = {'task', 'strategy', 'seed', 'preset', 'initial_structure', 'final_structure', 'removed', 'metrics_initial',
        'metrics_final', 'metrics_test', 'metrics_test_full', 'threshold', 'best', 'noise', 'split', 'parameters',
        'flops', 'seconds', 'seconds_total'}
PICTURES = ('curves.png', 'masks_full.png', 'masks_minimal.png', 'side_by_side.png', 'output_minimal.png')


def run_nb(name: str, tmp: Path, **params) -> Path:
    "Execute `nbs/name` with papermill from the repo root, its output notebook and its stdout in `tmp`; the out_dir."
    out = tmp/'out'
    with open(tmp/f'{name}.stdout', 'w') as stdout:              # what `--stdout-file /dev/stdout` shows in a terminal
        pm.execute_notebook(str(ROOT/'nbs'/name), str(tmp/name), parameters={'out_dir': str(out), **params},
                            kernel_name='python3', cwd=str(ROOT), progress_bar=False, stdout_file=stdout)
    return out


def check_result(out: Path, task: str, metrics: set, widths: list) -> dict:
    "Check `out/result.json` (a smoke run of `task` from `widths`) and the files beside it; the result."
    res = json.loads((out/'result.json').read_text())
    assert KEYS <= set(res), KEYS - set(res)
    fct.test_eq((res['task'], res['preset'], res['seed']), (task, 'smoke', 0))
    fct.test_eq(res['initial_structure'], widths)
    fct.test_eq([len(r) for r in res['removed']], res['initial_structure'])
    assert all(set(r) <= {0, 1} for r in res['removed'])
    fct.test_eq([len(r) - sum(r) for r in res['removed'] if sum(r) < len(r)], res['final_structure'])
    for k in ('metrics_initial', 'metrics_final', 'metrics_test', 'metrics_test_full'):
        assert metrics <= set(res[k]), (k, res[k])
    assert 0 < res['parameters'] <= res['parameters_initial'] and res['flops'] > 0 and res['seconds'] > 0
    for f in ('decisions.jsonl', 'split.json', 'start.pt', 'state.pt', 'model.pt2', *PICTURES):
        assert (out/f).stat().st_size > 0, f
    return res


def test_parameters_documented():
    "papermill finds every parameter (the `parameters` tag survived nbdev-clean) with its type and help."
    params = pm.inspect_notebook(str(ROOT/'nbs/minimize.ipynb'))
    fct.test_eq(set(params), PARAMS)
    assert all(p['help'] and p['inferred_type_name'] != 'None' for p in params.values())
    fct.test_eq(set(pm.inspect_notebook(str(ROOT/'nbs/compare.ipynb'))),
                {'task', 'widths', 'strategies', 'preset', 'seed', 'data_dir', 'out_dir', 'max_trials', 'seeds',
                 'workers', 'oracle'})


def test_minimize_canny_resumes(tmp_path):
    """A canny run cut short by `max_trials` continues its decision log when run again; a binary task's net ends
    in [0, 1]."""
    job = dict(task='canny', preset='smoke', widths='3, 3')       # 4 decisions on [3, 3] (13 on [5, 5], 3× the time)
    out = run_nb('minimize.ipynb', tmp_path, **job, max_trials=2)
    first = [json.loads(l) for l in (out/'decisions.jsonl').read_text().splitlines()]
    fct.test_eq(len(first), 2)
    assert not json.loads((out/'result.json').read_text())['done']
    run_nb('minimize.ipynb', tmp_path, **job)
    log = [json.loads(l) for l in (out/'decisions.jsonl').read_text().splitlines()]
    said = (tmp_path/'minimize.ipynb.stdout').read_text()     # headless, a line a stage and a decision, as they come
    assert 'resumed after 2 decisions' in said and f"\n{len(log)}. " in said and ' parameters, test f1 ' in said, said
    assert 'Exception reporting mode' not in said                       # nothing stray between the lines
    saved = (tmp_path/'minimize.ipynb').read_text()
    assert 'resumed after 2 decisions' in saved and 'widget-view' not in saved   # no frozen bar in the saved notebook
    fct.test_eq(log[:2], first)
    fct.test_eq([e['i'] for e in log], list(range(1, len(log) + 1)))
    res = check_result(out, 'canny', {'mae', 'mse', 'f1'}, [3, 3])
    assert not {'psnr', 'uiqi'} & set(res['metrics_test'])           # they reward an empty edge map
    assert res['done'] and res['decisions'] == len(log) > 2
    fct.test_eq(res['metric'], 'f1')
    net = torch.export.load(out/'model.pt2').module()(torch.rand(2, 1, 40, 40) * 3)
    assert 0 <= net.min() and net.max() <= 1                  # a binary task's exported net answers in [0, 1]


def test_bad_parameter_stops_before_any_work(tmp_path):
    "A bad parameter stops the notebook in its check cell: no out_dir is made (the message is tested in-process)."
    with pytest.raises(pm.PapermillExecutionError) as e:
        run_nb('minimize.ipynb', tmp_path, data_dir='/nonexistent/images')
    assert 'data_dir not found: /nonexistent/images' in str(e.value), str(e.value)
    assert not (tmp_path/'out').exists()


def test_compare_over_seeds_with_an_oracle(tmp_path):
    "Strategies × seeds as parallel trials: a row per run, mean and spread per strategy; an oracle's front is drawn."
    front = dict(metric='psnr', structures=[dict(widths=[1], params=27, mean=20., stopped=[None], metrics_test=[21.]),
                                            dict(widths=[2], params=53, mean=25., stopped=[None], metrics_test=[26.])])
    (tmp_path/'oracle.json').write_text(json.dumps(front))
    names = ['magnitude_l1']     # strategies × seeds as trials, one start per seed: tested in-process (09_sweep)
    out = run_nb('compare.ipynb', tmp_path, task='sobel', preset='smoke', widths='3,3', strategies=', '.join(names),
                 max_trials=1, seeds=2, workers=2, oracle=str(tmp_path/'oracle.json'))
    table = json.loads((out/'compare.json').read_text())
    fct.test_eq([(r['strategy'], r['seed']) for r in table['rows']], [(n, k) for n in names for k in (0, 1)])
    assert all(r['decisions'] <= 1 and r['parameters'] <= table['full']['parameters'] for r in table['rows'])
    for r in table['rows']:      # each run in its own folder, minimized by its own strategy
        fct.test_eq(json.loads((out/'runs'/f"{r['strategy']}-{r['seed']}"/'result.json').read_text())['strategy'],
                    r['strategy'])
    fct.test_eq([(r['strategy'], r['runs']) for r in table['summary']], [(n, 2) for n in names])
    fct.test_close(table['summary'][0]['metric_mean'], sum(r['metric'] for r in table['rows'][:2]) / 2)
    fct.test_close(table['full']['metric'], sum(r['full'] for r in table['rows']) / 2)   # the seeds' own full nets
    said = (tmp_path/'compare.ipynb.stdout').read_text()
    assert 'start seed 1: psnr' in said and 'magnitude_l1 seed 0: [' in said, said     # a line per finished trial
    assert (out/'compare.png').stat().st_size > 0
