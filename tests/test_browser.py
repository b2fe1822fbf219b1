"""A real browser: JupyterLab on 127.0.0.1 runs nbs/lab.ipynb, headless Chromium drives every action of the panel
(a mask toggle, polish, evaluate, snapshot and revert, one automatic step, run to the end, adopt, train N steps, a
save and a page reload) and checks what the person sees. Screenshots are kept in `_out/browser/` (copies in docs/)."""
import json, os, re, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import nbformat, pytest
from papermill.iorw import load_notebook_node
from papermill.parameterize import parameterize_notebook
from tests.common import ROOT

CHROMIUM = Path('/usr/bin/chromium')
ARTIFACTS = ROOT/'_out'/'browser'
ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync']

playwright = pytest.importorskip('playwright.sync_api', reason='playwright is not installed: pip install -e ".[dev]"')
pytest.importorskip('jupyterlab', reason='jupyterlab is not installed: pip install -e ".[dev]"')
if not CHROMIUM.exists():
    pytest.skip(f'{CHROMIUM} is missing: apt-get install chromium (Playwright cannot download a browser here)',
                allow_module_level=True)

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

def wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60):
    "Poll `url` until the server answers; fail with the end of its log if it dies or never answers."
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2): return
        except OSError: time.sleep(0.3)
    pytest.fail(f'jupyter lab did not answer on {url} (exit code {proc.poll()}):\n' + log.read_text()[-3000:])

@pytest.fixture
def lab_url(tmp_path):
    """JupyterLab serving a copy of lab.ipynb from `tmp_path`, its parameters set to the smoke preset,
    with isolated settings."""
    root, home = tmp_path/'nbs', tmp_path/'home'
    root.mkdir(); home.mkdir()
    nb = load_notebook_node(str(ROOT/'nbs'/'lab.ipynb'))
    nbformat.write(parameterize_notebook(nb, {'preset': 'smoke', 'max_trials': 2}), root/'lab.ipynb')
    quiet = home/'settings'/'@jupyterlab'/'apputils-extension'/'notification.jupyterlab-settings'
    quiet.parent.mkdir(parents=True)
    quiet.write_text('{"fetchNews": "false", "checkForUpdates": false, "doNotDisturbMode": true}')   # no news toast
    port = free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home/'config'), JUPYTER_DATA_DIR=str(home/'data'),
               JUPYTER_RUNTIME_DIR=str(home/'runtime'), JUPYTERLAB_SETTINGS_DIR=str(home/'settings'),
               JUPYTERLAB_WORKSPACES_DIR=str(home/'workspaces'),
               SELFSCALE_SETTINGS=os.environ.get('SELFSCALE_SETTINGS', str(ROOT/'settings.ini')))   # make test's
    log_path = tmp_path/'jupyter.log'
    log = open(log_path, 'w')
    proc = subprocess.Popen([sys.executable, '-m', 'jupyter', 'lab', '--no-browser', '--ServerApp.ip=127.0.0.1',
                             f'--ServerApp.port={port}', '--ServerApp.port_retries=0', '--IdentityProvider.token=',
                             '--ServerApp.password=', '--ServerApp.allow_root=True', f'--ServerApp.root_dir={root}',
                             '--LabApp.expose_app_in_browser=True', '--LabApp.news_url=None'],
                            cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_server(f'http://127.0.0.1:{port}/api/status', proc, log_path)
        yield f'http://127.0.0.1:{port}/lab/tree/lab.ipynb'
    finally:
        proc.terminate()
        try: proc.wait(timeout=15)
        except subprocess.TimeoutExpired: proc.kill(); proc.wait()
        log.close()

KERNEL_IDLE = "window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle'"

def status_text(page) -> str: return page.locator('.selfscale-status').inner_text()

def wait_status(page, text: str, timeout: float = 60_000):
    "Wait until the panel's status line contains `text` (or says an action failed: then fail with it)."
    now = "document.querySelector('.selfscale-status').innerText"
    page.wait_for_function(f"{now}.includes({json.dumps(text)}) || {now}.includes(' failed: ')", timeout=timeout)
    assert text in status_text(page), status_text(page)

def test_lab_in_a_browser(lab_url):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={'width': 1400, 'height': 1500})
            click = lambda text: page.locator('.selfscale-lab button', has_text=text).click()
            page.goto(lab_url)
            page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')", timeout=60_000)
            page.wait_for_function(KERNEL_IDLE, timeout=60_000)
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            try: page.locator('.selfscale-status').wait_for(timeout=90_000)
            except playwright.TimeoutError:
                errors = page.locator('[data-mime-type="application/vnd.jupyter.error"]').all_inner_texts()
                pytest.fail('the panel did not appear; notebook errors: ' + ('\n'.join(errors) or 'none shown'))
            wait_status(page, 'ready')
            step = int(re.search(r'step (\d+)', status_text(page)).group(1))

            toggle = page.locator('.selfscale-lab .widget-toggle-button').filter(has_text=re.compile(r'^0\.1$'))
            assert 'mod-active' in toggle.get_attribute('class')       # pressed: mask 0.1 is enabled
            toggle.click()
            wait_status(page, 'mask 0.1: not enabled ✓')
            assert 'mod-active' not in toggle.get_attribute('class')
            assert 'structure [4, 5]' in status_text(page)

            click('polish'); wait_status(page, 'polish ✓ — psnr ')              # the search's burst, by hand
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.locator('.selfscale-lab').screenshot(path=str(ARTIFACTS/'lab.png'))

            click('evaluate'); wait_status(page, 'evaluate ✓ psnr ')               # the metric, said in the status
            click('snapshot'); wait_status(page, 'snapshot ✓')
            page.locator('.selfscale-lab .widget-toggle-button').filter(has_text=re.compile(r'^1\.0$')).click()
            wait_status(page, 'mask 1.0: not enabled ✓')
            assert 'structure [4, 4]' in status_text(page)
            click('revert'); wait_status(page, 'structure [4, 5]')           # the snapshot, taken before the toggle
            assert 'revert to step' in status_text(page) and '✓' in status_text(page)

            click('one automatic step'); wait_status(page, 'one automatic step ✓', timeout=120_000)
            assert 'vs threshold' in status_text(page), status_text(page)    # the decision, with the line it met
            click('run to the end'); wait_status(page, 'adopt its net to look at it', timeout=180_000)
            row = page.locator('.selfscale-lab table tr', has_text='to the end (from step').inner_text()
            found = re.search(r'\[[\d, ]+\]', row).group(0)
            who = re.search(r'\S+ to the end \(from step \d+\)', row).group(0)
            click('adopt its net'); wait_status(page, f'adopted the net of {who} ✓')
            assert f'structure {found}' in status_text(page), (found, status_text(page))   # the adopted net is shown
            layers = page.locator('.selfscale-lab .widget-label', has_text=re.compile(r'^layer \d+$'))
            assert layers.count() == found.count(',') + 1                     # the grid: a row per layer it kept
            page.locator('.selfscale-lab').screenshot(path=str(ARTIFACTS/'lab-adopted.png'))

            step = int(re.search(r'step (\d+)', status_text(page)).group(1))   # Adam steps last: they unsettle a
            n = int(page.locator('.selfscale-lab .widget-text input').input_value())   # polished net
            click('train N steps'); wait_status(page, f'train {n} steps ✓ — psnr ')
            assert f'step {step + n}' in status_text(page), status_text(page)
            # saved (as JupyterLab's autosave does) and reloaded: the panel comes back from the kernel, and no output
            # refers to a widget that was closed (a finished bar that removed itself did: "model not found")
            page.evaluate("window.jupyterapp.commands.execute('docmanager:save')")
            page.wait_for_function("!window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000)
            shown = status_text(page)
            page.reload()
            page.locator('.selfscale-status').wait_for(timeout=60_000)
            wait_status(page, shown)
            page.wait_for_timeout(3000)                     # the log's outputs render after the panel
            broken = page.get_by_text('Error displaying widget').all_inner_texts()
            assert not broken, broken
        finally:
            browser.close()
