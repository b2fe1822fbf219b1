"""Safety: crafted pickles are refused and run nothing; nothing is written outside out_dir;
another experiment's out_dir is refused."""
import os, pickle, subprocess, sys
from pathlib import Path
import papermill as pm
import pytest, torch
import fastcore.test as fct
from selfscale.minimize import minimize
from selfscale.settings import load_settings
from selfscale.train import make_run
from selfscale.rundir import CheckpointError, load_checkpoint, read_checkpoint

from tests.common import ROOT, SMOKE, files


class Payload:
    "Unpickling this runs a shell command that creates `marker`."
    def __init__(self, marker: Path): self.marker = marker
    def __reduce__(self): return os.system, (f'touch {self.marker}',)


def crafted(path: Path, marker: Path, legacy: bool = False) -> Path:
    "A checkpoint at `path` that would create `marker` when unpickled: torch's zip format, or a bare pickle."
    obj = {'settings': {}, 'model': Payload(marker)}
    if legacy: path.write_bytes(pickle.dumps(obj))
    else: torch.save(obj, path)
    return path






@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'bare_pickle'])
def test_crafted_checkpoint_is_refused(tmp_path, legacy):
    "read_checkpoint and load_checkpoint refuse it with one line naming the file; the payload never runs."
    marker, path = tmp_path/'pwned', crafted(tmp_path/'evil.pt', tmp_path/'pwned', legacy)
    for load in (read_checkpoint, load_checkpoint):
        with pytest.raises(CheckpointError,
                           match=rf'checkpoint {path} cannot be read \(truncated, corrupted or unsafe\)') as e:
            load(path)
        assert '\n' not in str(e.value)
    assert not marker.exists()


def test_crafted_state_is_refused_on_resume(tmp_path):
    "A crafted state.pt with no state.prev.pt: resuming stops with an error naming it; the payload never runs."
    marker, run = tmp_path/'pwned', make_run(load_settings('sobel', **SMOKE))
    out = tmp_path/'out'; out.mkdir()
    crafted(out/'state.pt', marker)
    before = files(out)
    with pytest.raises(CheckpointError, match=rf"no good snapshot to resume from in {out}: "
                                              rf"checkpoint {out/'state.pt'} cannot be read"):
        minimize(run, out, progress=False)
    assert not marker.exists()
    fct.test_eq({k: v for k, v in files(out).items() if k != '.lock'}, before)    # only the run's empty lock is added


def test_crafted_state_falls_back_to_the_previous_one(tmp_path, finished):
    "A crafted state.pt beside a good state.prev.pt: a warning names it, it is kept aside unread, the search goes on."
    out, marker = tmp_path/'out', tmp_path/'pwned'
    out.mkdir(); (out/'state.prev.pt').write_bytes((finished/'state.pt').read_bytes())
    (out/'decisions.jsonl').write_bytes((finished/'decisions.jsonl').read_bytes())
    crafted(out/'state.pt', marker)
    with pytest.warns(UserWarning, match=rf"checkpoint {out/'state.pt'} cannot be read .*; "
                                         r"resuming from the previous snapshot"):
        res = minimize(make_run(load_settings('sobel', **SMOKE)), out, max_trials=1, progress=False)
    assert not marker.exists() and (out/'state.corrupt.pt').exists()
    fct.test_eq(res['decisions'], 2)


def test_crafted_start_is_refused(tmp_path):
    "A fresh out_dir holding a crafted start.pt: refused before training, not overwritten, the payload never runs."
    out, marker = tmp_path/'out', tmp_path/'pwned'
    out.mkdir(); crafted(out/'start.pt', marker)
    before = files(out)
    with pytest.raises(CheckpointError, match=rf"checkpoint {out/'start.pt'} cannot be read"):
        minimize(make_run(load_settings('sobel', **SMOKE)), out, progress=False)
    assert not marker.exists()
    fct.test_eq({k: v for k, v in files(out).items() if k != '.lock'}, before)    # only the run's empty lock is added


JOB = '''
import sys
from selfscale.settings import load_settings
from selfscale.train import make_run
from selfscale.minimize import minimize
minimize(make_run(load_settings('sobel', preset='smoke', device='cpu', seed=0)), sys.argv[1], max_trials=2,
         progress=False)
'''


def test_nothing_written_outside_out_dir(tmp_path):
    "A minimization given a relative out_dir writes only there: not in its working folder, HOME or TMPDIR."
    for d in ('cwd', 'home', 'tmp'): (tmp_path/d).mkdir()
    (tmp_path/'job.py').write_text(JOB)
    env = {**os.environ, 'HOME': str(tmp_path/'home'), 'TMPDIR': str(tmp_path/'tmp')}
    env.pop('SELFSCALE_CACHE', None)
    p = subprocess.run([sys.executable, str(tmp_path/'job.py'), 'runs/x'], cwd=tmp_path/'cwd', env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    written = set(files(tmp_path)) - {'job.py'}
    fct.test_eq({f for f in written if not f.startswith('cwd/runs/x/')}, set())
    fct.test_eq({f.rsplit('/', 1)[1] for f in written},
                {'start.pt', 'state.pt', 'state.prev.pt', 'decisions.jsonl', 'result.json', 'model.pt2', '.lock',
                 'split.json'})


@pytest.mark.parametrize('change', [dict(seed=1), dict(task='canny'), dict(strategy='sequential'), dict(widths='4,4'),
                                    dict(lr=1e-3)])
def test_other_experiment_is_refused_not_overwritten(finished, change):
    before = files(finished)
    with pytest.raises(ValueError, match=rf'out_dir {finished} holds another experiment \(.*\); '
                                         r'use another out_dir or the same settings'):
        minimize(make_run(load_settings(**{'task': 'sobel', **SMOKE, **change})), finished, progress=False)
    fct.test_eq(files(finished), before)


def test_other_seed_is_refused_through_papermill(tmp_path, finished):
    "The same through the main job: papermill stops with the reason, and the folder is as it was (no pictures added)."
    before = files(finished)
    with pytest.raises(pm.PapermillExecutionError, match=r'holds another experiment \(seed=0\)'):
        pm.execute_notebook(str(ROOT/'nbs/minimize.ipynb'), str(tmp_path/'o.ipynb'), kernel_name='python3',
                            cwd=str(ROOT), parameters=dict(out_dir=str(finished), preset='smoke', seed=1),
                            progress_bar=False)
    fct.test_eq(files(finished), before)
