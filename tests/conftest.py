"Fixtures shared by the integration tests."
import fcntl
from pathlib import Path
import pytest
from selfscale.minimize import minimize
from selfscale.settings import load_settings
from selfscale.train import make_run
from tests.common import SMOKE


@pytest.fixture(scope='session')
def finished(tmp_path_factory, worker_id) -> Path:
    """An out_dir of a short smoke minimization (sobel, seed 0), made once per test run (the xdist workers share the
    run's temporary folder, the first makes it under a lock): every user only reads it."""
    root = tmp_path_factory.mktemp('finished') if worker_id == 'master' else tmp_path_factory.getbasetemp().parent
    out = root/'finished'
    with open(root/'finished.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out/'result.json').exists():
            minimize(make_run(load_settings('sobel', **SMOKE)), out, max_trials=1, progress=False)
    return out
