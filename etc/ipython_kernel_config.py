# Installed by `make install` into .venv/etc/ipython/: the kernels that papermill, the lab and the tests start.
# ipykernel warns at every start that a kernel on localhost TCP is unencrypted, which is how papermill and JupyterLab
# launch every kernel; that one message is filtered at its logger, every other one still shows.
import logging

logging.getLogger('IPKernelApp').addFilter(lambda r: 'running over TCP without encryption' not in r.getMessage())
