"Shared helpers of the integration tests."
import hashlib
from pathlib import Path
import pytest
from selfscale.minimize import minimize
from selfscale.settings import load_settings
from selfscale.train import make_run

ROOT = Path(__file__).resolve().parents[1]
SMOKE = dict(preset='smoke', device='cpu', seed=0)


def files(root: Path) -> dict:
    "Every file under `root` (relative path → sha256)."
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob('*') if p.is_file()}


@pytest.fixture(scope='module')
def finished(tmp_path_factory) -> Path:
    "An out_dir of a short smoke minimization (sobel, seed 0)."
    out = tmp_path_factory.mktemp('finished')/'out'
    minimize(make_run(load_settings('sobel', **SMOKE)), out, max_trials=1, progress=False)
    return out
