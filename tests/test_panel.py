"The lab panel driven through its widgets, as a person would: clicks and values, then the run's state."
import pytest, torch
import fastcore.test as fct
import selfscale.panel as panel
from selfscale.settings import load_settings
from selfscale.train import make_run, train, snapshot, states_equal
from selfscale.minimize import apply_change
from selfscale.panel import Lab

SMOKE = load_settings('sobel', preset='smoke', device='cpu')

@pytest.fixture(scope='module')
def data(): return make_run(SMOKE).data

@pytest.fixture
def lab(data):
    run = make_run(SMOKE, data=data)
    train(run, 5, progress=False)
    return Lab(run, progress=False, max_trials=2)

def test_opens_on_the_run(lab):
    fct.test_eq([len(r) for r in lab.toggles], [5, 5])
    assert all(t.value and t.button_style == 'success' for row in lab.toggles for t in row)
    assert 'step 5' in lab.status.value and 'ready' in lab.status.value
    assert lab.masks.value[:4] == lab.curves.value[:4] == b'\x89PNG'
    assert 'manual (now)' in lab.table.value and lab.widget.children[0] is lab.status

def test_toggles_change_the_switches(lab):
    model = lab.run.model
    lab.toggles[1][3].value = False
    assert not model.enabled[1][3] and model.structure() == [5, 4] and lab.toggles[1][3].button_style == ''
    assert 'structure [5, 4]' in lab.status.value and 'mask 1.3: not enabled' in lab.status.value
    lab.freezes[0][2].value = True
    assert model.frozen[0][2] and lab.freezes[0][2].button_style == 'info'
    lab.toggles[1][3].value = True
    assert model.enabled[1][3]

def test_reinit_changes_one_mask_only(lab):
    w = lab.run.model.convs[0].weight.detach().clone()
    lab.reinits[0][4].click()
    after = lab.run.model.convs[0].weight
    assert not torch.equal(w[4], after[4]) and torch.equal(w[:4], after[:4])

def test_train_n_steps_advances_step_and_history(lab):
    n = len(lab.run.history)
    lab.steps_input.value = 6
    lab.train_button.click()
    fct.test_eq(lab.run.step, 11)
    fct.test_eq([h['step'] for h in lab.run.history[n:]], list(range(6, 12)))
    assert 'step 11' in lab.status.value and 'train 6 steps ✓' in lab.status.value

def test_evaluate_records_an_evaluation(lab):
    lab.evaluate_button.click()
    assert lab.run.history[-1]['step'] == 5 and 'psnr' in lab.run.history[-1]['eval']
    assert 'evaluate ✓ psnr' in lab.status.value

def test_revert_restores_the_snapshot(lab):
    lab.toggles[0][0].value = False
    lab.snapshot_button.click()
    saved = snapshot(lab.run)
    lab.toggles[0][0].value = True
    lab.freezes[1][1].value = True
    lab.train_button.click()
    lab.revert_button.click()
    assert states_equal(snapshot(lab.run), saved)
    assert not lab.toggles[0][0].value and not lab.freezes[1][1].value and 'step 5' in lab.status.value

def test_bad_n_is_reported_and_the_panel_stays_usable(lab):
    lab.steps_input.value = 0
    lab.train_button.click()          # a click never raises: the error goes to the status line
    assert 'N must be a positive number of steps, got 0' in lab.status.value and 'color:#c00' in lab.status.value
    fct.test_eq(lab.run.step, 5)
    assert not any(w.disabled for w in (lab.train_button, lab.revert_button, lab.toggles[0][0]))
    with pytest.raises(ValueError, match='N must be'): lab.train_steps()

def test_controls_are_disabled_while_the_kernel_works(lab, monkeypatch):
    seen = []
    monkeypatch.setattr(panel, 'train', lambda run, n, progress: seen.append([lab.end_button.disabled, lab.toggles[1][1].disabled]))
    lab.train_button.click()
    fct.test_eq(seen, [[True, True]])
    assert not lab.end_button.disabled and not lab.toggles[1][1].disabled

def test_one_automatic_step_logs_a_decision(lab):
    lab.strategy.value = 'sequential'
    lab.step_button.click()
    fct.test_eq(len(lab.decisions), 1)
    d = lab.decisions[0]
    fct.test_eq((d['strategy'], d['action'], d['layer'], d['mask']), ('sequential', 'disable', 0, 0))
    assert states_equal(lab.saved, snapshot(lab.run))        # the panel stands on the accepted state
    fct.test_eq(lab.run.model.structure(), [5 - d['kept'], 5])
    assert ('kept' if d['kept'] else 'reverted') in lab.status.value and '>1</td>' in lab.table.value
    lab.step_button.click()
    fct.test_eq([d['i'] for d in lab.decisions], [1, 2])

def test_search_starts_afresh_after_a_revert_across_a_layer_removal(lab):
    lab.strategy.value = 'sequential'
    lab.step_button.click()
    apply_change(lab.run, {'action': 'remove_layer', 'layer': 0})
    lab.refresh()
    fct.test_eq([len(r) for r in lab.toggles], [5])       # the grid follows the widths
    lab.step_button.click()                                # one layer: a fresh search
    fct.test_eq(len(lab.search.origin), 1)
    lab.revert_button.click()
    fct.test_eq([len(r) for r in lab.toggles], [5])
    lab.toggles[0][2].value = False
    assert not lab.run.model.enabled[0][2]

def test_run_to_the_end_fills_the_table_and_keeps_the_manual_net(lab):
    lab.strategy.value = 'magnitude_l1'
    before = snapshot(lab.run)
    lab.end_button.click()
    fct.test_eq(len(lab.rows), 1)
    row = lab.rows[0]
    fct.test_eq((row['strategy'], row['decisions']), ('magnitude_l1', 2))
    assert 'magnitude_l1 to the end (from step 5)' in lab.table.value
    assert states_equal(snapshot(lab.run), before)

def test_displays_its_widget(lab, monkeypatch):
    shown = []
    monkeypatch.setattr(panel, 'display', shown.append)
    lab._ipython_display_()
    assert shown == [lab.widget] and 'selfscale-lab' in lab.widget._dom_classes

def test_refuses_an_unknown_budget(data):
    with pytest.raises(ValueError, match=r"unknown budget \['steps'\]; allowed: max_trials, time_budget, target"):
        Lab(make_run(SMOKE, data=data), steps=3)
