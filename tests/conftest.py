"Fixtures shared by the integration tests."
from pathlib import Path
import pytest
from selfscale.minimize import minimize
from selfscale.settings import load_settings
from selfscale.train import make_run
from tests.common import SMOKE


@pytest.fixture(scope='session')
def finished(tmp_path_factory) -> Path:
    "An out_dir of a short smoke minimization (sobel, seed 0), made once per test process: every user only reads it."
    out = tmp_path_factory.mktemp('finished')/'out'
    minimize(make_run(load_settings('sobel', **SMOKE)), out, max_trials=1, progress=False)
    return out
