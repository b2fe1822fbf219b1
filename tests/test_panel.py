"""The lab panel beyond its notebook's tests: controls locked while it works, the same decision as minimize,
widths that change."""
import pytest
import fastcore.test as fct
import selfscale.panel as panel
from selfscale.settings import load_settings
from selfscale.train import fit, make_run, snapshot, restore
from selfscale.minimize import minimize
from selfscale.decide import apply_change
from selfscale.rundir import read_log
from selfscale.panel import Lab

from tests.common import SMOKE
SMOKE_SOBEL = load_settings('sobel', **SMOKE)

@pytest.fixture(scope='module')
def trained():
    run = make_run(SMOKE_SOBEL); fit(run, progress=False)
    return run.data, snapshot(run)

@pytest.fixture
def lab(trained):
    data, state = trained
    return Lab(restore(make_run(SMOKE_SOBEL, data=data), state), progress=False, max_trials=2)

def test_controls_are_disabled_while_the_kernel_works(lab, monkeypatch):
    seen = []
    monkeypatch.setattr(panel, 'train',
                        lambda run, n, progress: seen.append([lab.end_button.disabled, lab.toggles[1][1].disabled]))
    lab.train_button.click()
    fct.test_eq(seen, [[True, True]])
    assert not lab.end_button.disabled and not lab.toggles[1][1].disabled

def test_automatic_step_makes_the_decision_minimize_makes(lab, trained, tmp_path):
    "The panel's step and the loop call the same turn: from the same state, the same first decision."
    lab.strategy.value = SMOKE_SOBEL.strategy
    lab.step_button.click()
    data, state = trained
    minimize(restore(make_run(SMOKE_SOBEL, data=data), state), tmp_path, max_trials=1, progress=False)
    strip = lambda e: {k: v for k, v in e.items() if k != 'seconds'}
    fct.test_eq(strip(lab.decisions[0]), strip(read_log(tmp_path)[0]))
    assert 'vs threshold' in lab.status.value

def test_search_follows_the_widths(lab):
    lab.snapshot_button.click()
    apply_change(lab.run, {'action': 'remove_layer', 'layer': 0})
    lab.refresh()
    fct.test_eq([len(r) for r in lab.toggles], [5])        # the grid follows the widths
    lab.step_button.click()                                 # one layer: a fresh search
    fct.test_eq(len(lab.search.origin), 1)
    lab.revert_button.click()
    fct.test_eq([len(r) for r in lab.toggles], [5, 5])
    lab.step_button.click()                                 # two layers again: another fresh search
    fct.test_eq(len(lab.search.origin), 2 - lab.decisions[-1]['kept'])

def test_displays_its_widget(lab, monkeypatch):
    shown = []
    monkeypatch.setattr(panel, 'display', shown.append)
    lab._ipython_display_()
    assert shown == [lab.widget] and 'selfscale-lab' in lab.widget._dom_classes
