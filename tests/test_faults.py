"""Crashes and damage: a minimization killed with SIGKILL at several points ends like an uninterrupted one;
damaged state files and diverging bursts."""
import errno, io, itertools, json, math, os, random, shutil, signal, subprocess, sys, time, zipfile
from dataclasses import asdict
from pathlib import Path
import pytest, torch
import fastcore.test as fct
import selfscale.metrics as metrics
import selfscale.rundir as rundir
from selfscale.minimize import minimize
from selfscale.decide import Search
from selfscale.rundir import (CheckpointError, lock_run_folder, read_log, read_state, save_checkpoint, save_state,
                              load_state)
from selfscale.settings import load_settings
from selfscale.train import Diverged, fit, make_run, snapshot, train

from tests.common import SMOKE

# The job the faulted tests run: a smoke-sized sobel minimization of [3, 3] (7 decisions) into argv[1]. Two environment
# variables make the process kill itself at an exact point: CRASH_STATE_WRITE=n in the middle of its n-th write of
# state.pt (half the bytes in the temporary file), CRASH_LOG_WRITE=n in the middle of its n-th line of decisions.jsonl.
JOB = '''
import io, json, os, signal, sys
import selfscale.minimize as M, selfscale.rundir as R
from selfscale.settings import load_settings
from selfscale.train import make_run
real_write, real_save, real_append = R.atomic_write, M.save_state, M.append_log

def half(write):
    "A writer that writes the first half of what `write` writes, then kills the process."
    def torn(f):
        buf = io.BytesIO(); write(buf)
        f.write(buf.getvalue()[:len(buf.getvalue()) // 2]); f.flush(); os.kill(os.getpid(), signal.SIGKILL)
    return torn

def torn_state(*args):
    R.atomic_write = lambda path, write: real_write(path, half(write))
    real_save(*args)

def torn_line(out, entry):
    with open(out/'decisions.jsonl', 'a') as f: f.write(json.dumps(entry)[:40]); f.flush()
    os.kill(os.getpid(), signal.SIGKILL)

def crash_on(n, fn, crash):
    "`fn`, except that its n-th call is `crash`."
    calls = [0]
    def wrapped(*args):
        calls[0] += 1
        return (crash if calls[0] == n else fn)(*args)
    return wrapped

if os.environ.get('CRASH_STATE_WRITE'):
    M.save_state = crash_on(int(os.environ['CRASH_STATE_WRITE']), real_save, torn_state)
if os.environ.get('CRASH_LOG_WRITE'):
    M.append_log = crash_on(int(os.environ['CRASH_LOG_WRITE']), real_append, torn_line)
M.minimize(make_run(load_settings('sobel', preset='smoke', device='cpu', seed=0, widths=(3, 3))), sys.argv[1],
           progress=False)
'''


class Job:
    "The job as a subprocess writing into `out`; its stderr goes to a file beside it."
    started = itertools.count()

    def __init__(self, tmp: Path, out: Path, **env):
        (tmp/'job.py').write_text(JOB)
        self.out, self.err = out, tmp/f'stderr{next(self.started)}.txt'
        with open(self.err, 'w') as err:
            self.p = subprocess.Popen([sys.executable, str(tmp/'job.py'), str(out)], cwd=tmp, stdout=subprocess.DEVNULL,
                                      stderr=err, env={**os.environ, **env})

    def lines(self) -> int:
        f = self.out/'decisions.jsonl'
        return f.read_bytes().count(b'\n') if f.exists() else 0

    def kill_when(self, ready, timeout: float = 120) -> bool:
        "SIGKILL the job as soon as `ready()` holds; False when the job ended first."
        t = time.time()
        while not ready():
            if self.p.poll() is not None: return False
            assert time.time() - t < timeout, 'the job did not get there in time'
            time.sleep(0.005)
        self.p.kill(); self.p.wait()
        return True

    def wait(self) -> int: return self.p.wait(timeout=300)
    def stderr(self) -> str: return self.err.read_text()


def flip(raw: bytes, n: int = 64) -> bytes:
    "`raw` with `n` bytes inverted in its largest record's data, the length unchanged: only the CRC check notices."
    with zipfile.ZipFile(io.BytesIO(raw)) as z: rec = max(z.infolist(), key=lambda i: i.compress_size)
    head = rec.header_offset          # the local header: 30 bytes, then the name and the extra field, then the data
    data = head + 30 + sum(int.from_bytes(raw[head + k:head + k + 2], 'little') for k in (26, 28))
    m = data + (rec.compress_size - n) // 2
    return raw[:m] + bytes(b ^ 0xFF for b in raw[m:m + n]) + raw[m + n:]


def test_killed_run_ends_like_an_uninterrupted_one(tmp_path):
    """SIGKILL after the start, after 3 decisions, in the middle of a state write and of a log line, at random moments;
    damage."""
    clean = Job(tmp_path, tmp_path/'clean')                     # the uninterrupted run, beside the faulted ones
    out = tmp_path/'faulted'
    # 1. killed as soon as the trained start is saved (its control burst running): the restart trains again from scratch
    assert Job(tmp_path, out).kill_when(lambda: (out/'start.pt').exists())
    # 2. killed after 3 decisions
    j = Job(tmp_path, out); assert j.kill_when(lambda: j.lines() >= 3)
    # 3. killed in the middle of writing state.pt: state.pt was rotated to state.prev.pt,
    #    a half-written temporary is left
    j = Job(tmp_path, out, CRASH_STATE_WRITE='1')
    fct.test_eq(j.wait(), -signal.SIGKILL)
    assert not (out/'state.pt').exists() and (out/'state.prev.pt').exists() and list(out.glob('.state.pt.*.tmp'))
    # 4. the restart warns and resumes from state.prev.pt; killed in the middle of its second log line, left torn
    j = Job(tmp_path, out, CRASH_LOG_WRITE='2')
    fct.test_eq(j.wait(), -signal.SIGKILL)
    assert (f"checkpoint not found: {out/'state.pt'}; "
            f"resuming from the previous snapshot {out/'state.prev.pt'}") in j.stderr()
    assert not list(out.glob('.state.pt.*.tmp')) and not (out/'decisions.jsonl').read_bytes().endswith(b'\n')
    # 5. state.pt damaged on disk: the restart names it, keeps it aside as state.corrupt.pt, resumes from state.prev.pt
    raw = flip((out/'state.pt').read_bytes())
    (out/'state.pt').write_bytes(raw)
    j = Job(tmp_path, out); n = j.lines()
    j.kill_when(lambda: j.lines() > n)
    assert f"checkpoint {out/'state.pt'} is corrupted" in j.stderr() and (out/'state.corrupt.pt').read_bytes() == raw
    # 6. killed at random moments once it is deciding (in a burst, a log line or a state write)
    rng = random.Random(0)
    for _ in range(2):
        j = Job(tmp_path, out); n = j.lines()
        j.kill_when(lambda: j.lines() > n and not time.sleep(rng.uniform(0, 0.3)))
    # 7. the last restart finishes; everything equals the uninterrupted run
    fct.test_eq(Job(tmp_path, out).wait(), 0)
    fct.test_eq(clean.wait(), 0)
    a, b = (json.loads((d/'result.json').read_text()) for d in (clean.out, out))
    assert a['done'] and b['done']
    for k in ('initial_structure', 'final_structure', 'removed', 'decisions', 'parameters'): fct.test_eq(b[k], a[k])
    # The same decisions in the same order. A restart that trains the full net again can land within float noise of
    # the uninterrupted one (seen once: weights 1.5e-3 apart, the reference 0.004 dB), so metrics are compared to 0.05.
    fct.test_close(b['metrics_final']['psnr'], a['metrics_final']['psnr'], eps=0.05)
    what = lambda log: [(e['action'], e.get('layer'), e.get('mask'), e['kept'], e['structure']) for e in log]
    fct.test_eq(what(read_log(out)), what(read_log(clean.out)))
    assert not list(out.glob('.*.tmp'))


@pytest.fixture()
def nan_when_disabled(monkeypatch):
    "The l2 loss becomes NaN whenever mask 0.0 of the returned run is disabled."
    run = make_run(load_settings('sobel', strategy='sequential', **SMOKE)); fit(run, progress=False)
    l2 = metrics.LOSSES['l2']
    monkeypatch.setitem(metrics.LOSSES, 'l2', lambda p, y: l2(p, y) * (1 if run.model.enabled[0][0] else math.nan))
    return run


def test_diverged_burst_is_reverted_and_reported(tmp_path, nan_when_disabled):
    "Every trial that disables mask 0.0 diverges: it is logged as diverged and never kept; the result is finite."
    res = minimize(nan_when_disabled, tmp_path, max_trials=6, progress=False)
    log = read_log(tmp_path)
    tried = [e for e in log if e['action'] == 'disable' and (e['layer'], e['mask']) == (0, 0)]
    assert tried and all(e['diverged'] and not e['kept'] and math.isnan(e['after']) for e in tried)
    assert b'"after": NaN' in (tmp_path/'decisions.jsonl').read_bytes()
    assert not any(e['diverged'] for e in log if e not in tried)
    assert nan_when_disabled.model.enabled[0][0] and all(map(math.isfinite, res['metrics_final'].values()))


def test_diverging_control_burst_stops_the_run(tmp_path, monkeypatch):
    "When even the unaltered net diverges in a burst, the run stops with one line saying what to try."
    run = make_run(load_settings('sobel', **SMOKE)); fit(run, progress=False)
    l2 = metrics.LOSSES['l2']
    monkeypatch.setitem(metrics.LOSSES, 'l2', lambda p, y: l2(p, y) * (math.nan if torch.is_grad_enabled() else 1))
    with pytest.raises(Diverged, match=r'control burst of the full net diverged .*; '
                                       r'the net is unstable: try another seed \(now 0\)'):
        minimize(run, tmp_path, progress=False)


def _two_states(out: Path):
    "A state folder with state.prev.pt (0 decisions) and state.pt (1 decision); the run."
    run = make_run(load_settings('sobel', **SMOKE)); train(run, 5, progress=False)
    search = Search(list(run.model.widths), {'psnr': 0.}, {}, [0, 1])
    save_state(out, snapshot(run), asdict(search))
    search.decisions = 1; save_state(out, snapshot(run), asdict(search))
    return run


@pytest.mark.parametrize('damage', ['truncated', 'flipped', 'empty', 'garbage', 'start.pt'])
def test_damaged_state_falls_back_to_the_previous_one(tmp_path, damage):
    run, f = _two_states(tmp_path), tmp_path/'state.pt'
    raw = f.read_bytes(); m = len(raw) // 2
    if damage == 'start.pt': save_checkpoint(run, f)              # a good checkpoint, but not a search state
    else: f.write_bytes({'truncated': raw[:m], 'flipped': flip(raw), 'empty': b'',
                         'garbage': b'not a checkpoint\n' * 10}[damage])
    with pytest.warns(UserWarning, match=f"checkpoint {f}.*; "
                                         f"resuming from the previous snapshot {tmp_path/'state.prev.pt'}"):
        fct.test_eq(load_state(tmp_path, run)[1]['decisions'], 0)
    assert (tmp_path/'state.corrupt.pt').exists() and not f.exists() and (tmp_path/'state.prev.pt').exists()


def test_no_good_state_is_refused_and_kept(tmp_path):
    "Both state files damaged: one line naming both, nothing moved or rewritten."
    run = _two_states(tmp_path)
    for name in ('state.pt', 'state.prev.pt'): (tmp_path/name).write_bytes(b'\0' * 100)
    with pytest.raises(CheckpointError,
                       match=r'no good snapshot to resume from in .*state\.pt.*state\.prev\.pt.*use another out_dir'):
        minimize(run, tmp_path, progress=False)
    fct.test_eq({p.name for p in tmp_path.iterdir()}, {'state.pt', 'state.prev.pt', '.lock'})
    assert all((tmp_path/n).read_bytes() == b'\0' * 100 for n in ('state.pt', 'state.prev.pt'))


def test_log_without_state_is_refused(tmp_path):
    "A folder with a decision log (or a result) but no start.pt or state to continue it: refused, not overwritten."
    (tmp_path/'decisions.jsonl').write_text('{"i": 1}\n')
    with pytest.raises(ValueError, match="holds decisions.jsonl but no start.pt or state.pt: they are not a run's"):
        minimize(make_run(load_settings('sobel', **SMOKE)), tmp_path, progress=False)
    fct.test_eq((tmp_path/'decisions.jsonl').read_text(), '{"i": 1}\n')


def test_one_writer_per_folder(tmp_path):
    """A folder another process is minimizing into is refused with one line; once that run has ended,
    the next resumes it."""
    out = tmp_path/'out'
    j = Job(tmp_path, out)
    t = time.time()
    while j.lines() < 1:
        assert j.p.poll() is None and time.time() - t < 120, 'the job did not get to its first decision'
        time.sleep(0.01)
    job = load_settings('sobel', **SMOKE, widths=(3, 3))        # the job's settings
    with pytest.raises(RuntimeError) as e: minimize(make_run(job), out, progress=False)
    fct.test_eq(str(e.value), f"out_dir {out} is in use by another run (pid {j.p.pid}); wait for it or use another "
                              "out_dir")
    j.p.kill(); j.p.wait()                                       # the OS releases the lock of a killed process
    n = read_state(out)[0]['search']['decisions']               # what the resume starts from
    res = minimize(make_run(job), out, max_trials=1, progress=False)
    fct.test_eq(res['decisions'], n + 1)
    with lock_run_folder(out): pass                              # and the finished run released it too


def test_bad_log_line_in_the_middle_is_refused(tmp_path, finished):
    "A bogus line before the last one of decisions.jsonl stops the resume with its line number; nothing is cut."
    out = tmp_path/'out'; shutil.copytree(finished, out)
    damaged = '\n' + (out/'decisions.jsonl').read_text()
    (out/'decisions.jsonl').write_text(damaged)
    refused = r'decisions\.jsonl line 1 is not a decision; restore the file or use another out_dir'
    with pytest.raises(CheckpointError, match=refused):
        minimize(make_run(load_settings('sobel', **SMOKE)), out, max_trials=2, progress=False)
    fct.test_eq((out/'decisions.jsonl').read_text(), damaged)


class FullDisk(io.FileIO):
    "A file on a disk that fills at 100 bytes: a short write, then no space left (torch's writer hides the error)."
    def write(self, data):
        if self.tell() >= 100: raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(bytes(data)[:100 - self.tell()])


def test_full_disk_is_one_line_and_loses_nothing(tmp_path, finished, monkeypatch):
    "The disk fills while state.pt is written: one line naming folder and file; a rerun resumes from the last state."
    out = tmp_path/'out'; shutil.copytree(finished, out)
    run = make_run(load_settings('sobel', **SMOKE))
    n = read_state(out)[0]['search']['decisions']
    full = lambda path, mode: (FullDisk if '.state.pt.' in str(path) else open)(path, mode)
    monkeypatch.setattr(rundir, 'open', full, raising=False)
    with pytest.raises(OSError) as e: minimize(run, out, max_trials=1, progress=False)
    fct.test_eq(str(e.value), f"out_dir {out}: no space left on device while writing state.pt; "
                              "free space and rerun to resume")
    assert not list(out.glob('.*.tmp'))
    monkeypatch.undo()
    with pytest.warns(UserWarning, match=f"checkpoint not found: {out/'state.pt'}; resuming from the previous"):
        res = minimize(make_run(run.settings, data=run.data), out, max_trials=1, progress=False)
    fct.test_eq(res['decisions'], n + 1)
