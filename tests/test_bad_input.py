"""Bad names and values through the API (load_settings, make_run, train, minimize) and bad papermill parameter types:
one line naming the parameter and what is allowed, before any work, and nothing in an existing out_dir is touched.
(Image folders are tested in test_data.py, the notebook's bad values in test_papermill.py.)"""
import subprocess, sys
import cv2, numpy as np
import pytest, torch
import fastcore.test as fct
from selfscale.minimize import minimize
from selfscale.settings import load_settings
from selfscale.train import make_run, resolve_device, train

from tests.common import ROOT, SMOKE, files
STRATEGIES = ('ablation, cosine_abs_max, cosine_abs_mean, cosine_max, cosine_mean, magnitude_l1, magnitude_l2, '
              'mean_activation, random, sequential, taylor')




def one_line(call, kind, message: str):
    "`call()` raises `kind` whose text is exactly one line containing `message`."
    with pytest.raises(kind) as e: call()
    text = str(e.value)
    assert message in text and '\n' not in text, text




@pytest.mark.parametrize('call,kind,message', [
    (lambda: make_run(load_settings('nope', **SMOKE)), ValueError,
     "unknown task 'nope'; known: canny, sobel, threshold"),
    (lambda: make_run(task='nope', **SMOKE), ValueError, "unknown task 'nope'; known: canny, sobel, threshold"),
    (lambda: load_settings('sobel', preset='huge'), ValueError,
     "unknown preset 'huge'; known: smoke, default, thorough"),
    (lambda: load_settings('sobel', stategy='taylor'), TypeError,
     "unknown setting(s) ['stategy']; known: task, data_dir, widths,"),
    (lambda: train(make_run(load_settings('sobel', loss='nope', **SMOKE)), 1), ValueError,
     "unknown loss 'nope'; known: l1, l2, f1"),
    (lambda: minimize(make_run(load_settings('sobel', **SMOKE)), max_trials=2.5), ValueError,
     'max_trials must be a non-negative integer or None, got 2.5'),
], ids=['task', 'task_make_run', 'preset', 'setting', 'loss_train', 'max_trials'])
def test_unknown_names(call, kind, message): one_line(call, kind, message)


@pytest.mark.parametrize('setting,message', [
    (dict(strategy='nope'), f"unknown strategy 'nope'; known: {STRATEGIES}"),
    (dict(loss='nope'), "unknown loss 'nope'; known: l1, l2, f1"),
    (dict(metric='nope'), "metric 'nope' is not measured for task 'sobel'; use one of: mae, mse, psnr, uiqi, loss"),
    (dict(metric='f1'), "metric 'f1' is not measured for task 'sobel'"),
])
def test_minimize_refuses_names_before_training(tmp_path, finished, setting, message):
    "Names the loop would meet only after training are refused at once: nothing trained, no folder made, none touched."
    run = make_run(load_settings('sobel', **SMOKE, **setting))
    one_line(lambda: minimize(run, tmp_path/'new', progress=False), ValueError, message)
    assert run.step == 0 and not (tmp_path/'new').exists()
    before = files(finished)
    one_line(lambda: minimize(run, finished, progress=False), ValueError, message)
    fct.test_eq(files(finished), before)


@pytest.mark.parametrize('widths,message', [
    ('0,3', 'widths must be positive integers, got (0, 3)'),
    ((5, -1), 'widths must be positive integers, got (5, -1)'),
    ([], 'widths must be positive integers, got ()'),
    ('a,b', "setting 'widths': cannot read 'a,b' as tuple"),
    ('5.5,5', "setting 'widths': cannot read '5.5,5' as tuple"),
    (2.5, "setting 'widths': cannot read 2.5 as tuple"),
    ((5.5, 5), "setting 'widths': cannot read (5.5, 5) as tuple"),
])
def test_bad_widths(widths, message): one_line(lambda: load_settings('sobel', widths=widths), ValueError, message)


@pytest.mark.parametrize('tolerance,message', [
    (-0.1, 'tolerance must be >= 0 and finite, got -0.1'), ('x', "setting 'tolerance': cannot read 'x' as float"),
    (float('nan'), 'tolerance must be >= 0 and finite, got nan'),
])
def test_bad_tolerance(tolerance, message):
    one_line(lambda: load_settings('sobel', tolerance=tolerance), ValueError, message)


def test_negative_seed():
    one_line(lambda: load_settings('sobel', **dict(SMOKE, seed=-1)), ValueError,
             'seed must be a non-negative integer, got -1')


@pytest.mark.skipif(torch.cuda.is_available(), reason='this machine has CUDA')
def test_cuda_on_a_cpu_machine():
    message = "device 'cuda' is not available on this machine; use 'auto' or 'cpu'"
    one_line(lambda: resolve_device('cuda'), ValueError, message)
    one_line(lambda: make_run(load_settings('sobel', preset='smoke', device='cuda')), ValueError, message)
    fct.test_eq(resolve_device('auto'), torch.device('cpu'))


def test_device_that_is_no_device():
    one_line(lambda: make_run(load_settings('sobel', preset='smoke', device='gpu')), ValueError,
             "device 'gpu' is not a device name; use 'auto', 'cpu' or 'cuda'")


def test_out_dir_that_is_a_file(tmp_path):
    f = tmp_path/'results'; f.write_text('mine')
    one_line(lambda: minimize(make_run(load_settings('sobel', **SMOKE)), f, progress=False), ValueError,
             f'out_dir {f} is a file; give a folder')
    fct.test_eq(f.read_text(), 'mine')


def test_out_dir_refused_before_training(tmp_path):
    "A dangling link; a folder that is no run's yet holds files a run writes: one line each, nothing trained or made."
    run = make_run(load_settings('sobel', **SMOKE))
    link = tmp_path/'link'; link.symlink_to(tmp_path/'gone')
    one_line(lambda: minimize(run, link, progress=False), ValueError,
             f"out_dir {link} is a link to {tmp_path/'gone'}, which does not exist; create it or give another out_dir")
    mine = tmp_path/'mine'; mine.mkdir()
    for name in ('notes.txt', 'curves.png', 'model.pt2'): (mine/name).write_text(name)
    before = files(mine)
    one_line(lambda: minimize(run, mine, progress=False), ValueError,
             f"out_dir {mine} holds model.pt2, curves.png but no start.pt or state.pt: they are not a run's and a run "
             "would overwrite them; move them away or give another out_dir")
    assert run.step == 0 and not (tmp_path/'gone').exists()
    fct.test_eq(files(mine), before)


def test_out_dir_and_data_dir_overlap(tmp_path):
    "A run's pictures must never become its training images: out_dir inside data_dir (or the reverse) is refused."
    images = tmp_path/'images'; images.mkdir()
    for i in range(8):
        cv2.imwrite(str(images/f'{i}.png'), np.random.default_rng(i).integers(0, 255, (64, 64), np.uint8))
    run = make_run(load_settings('sobel', **SMOKE, data_dir=str(images), crop=32, patch=16, n_eval=2))
    for out in (images, images/'runs', tmp_path):
        one_line(lambda: minimize(run, out, progress=False), ValueError, f'out_dir {out} and data_dir {images} overlap')
    fct.test_eq(sorted(p.name for p in images.iterdir()), [f'{i}.png' for i in range(8)])


def test_resume_on_other_data_is_refused(tmp_path, finished):
    "data_dir is part of the experiment: the finished run (embedded photos) is not continued on other images."
    images = tmp_path/'images'; images.mkdir()
    for i in range(8):
        cv2.imwrite(str(images/f'{i}.png'), np.random.default_rng(i).integers(0, 255, (96, 96), np.uint8))
    before = files(finished)
    other = dict(SMOKE, data_dir=str(images), n_eval=2)
    one_line(lambda: minimize(make_run(load_settings('sobel', **other)), finished, progress=False), ValueError,
             f"out_dir {finished} holds another experiment (data_dir='', ")
    fct.test_eq(files(finished), before)


def papermill(tmp_path, *args) -> subprocess.CompletedProcess:
    "The main job run by papermill's command line with `args`, from the repository root."
    return subprocess.run([sys.executable, '-m', 'papermill', 'nbs/minimize.ipynb', str(tmp_path/'o.ipynb'),
                           '--no-progress-bar', *args], cwd=ROOT, capture_output=True, text=True)


def test_papermill_wrong_type(tmp_path, finished):
    """`papermill ... -p tolerance x`: non-zero exit, the reason on stderr, the existing out_dir as it was
    (one kernel for the command line's behaviour; every message itself is tested in-process)."""
    before = files(finished)
    p = papermill(tmp_path, '-p', 'preset', 'smoke', '-p', 'out_dir', str(finished), '-p', 'tolerance', 'x')
    assert p.returncode != 0
    assert "ValueError: setting 'tolerance': cannot read 'x' as float" in p.stderr, p.stderr[-2000:]
    assert 'without encryption' not in p.stderr     # ipykernel's warning at every start, filtered (etc/)
    fct.test_eq(files(finished), before)


def test_papermill_yaml_of_wrong_type(tmp_path):
    "`papermill ... -f params.yaml` with `task: [sobel]`: one line naming the parameter and the type it must have."
    (tmp_path/'params.yaml').write_text(f"task: [sobel]\nout_dir: {tmp_path/'out'}\n")
    p = papermill(tmp_path, '-f', str(tmp_path/'params.yaml'))
    assert p.returncode != 0
    line = "TypeError: parameter 'task' must be a string (quote it in YAML), got list ['sobel']"
    assert line in p.stderr, p.stderr[-2000:]
    assert not (tmp_path/'out').exists()
