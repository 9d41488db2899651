"""Every notebook runs top to bottom in a real Jupyter kernel (nbclient), at CI sizes, so none can rot.

Each notebook's first code cell reads ``CASCJAX_NOTEBOOK_SMALL``: set to 1 here, before the kernel starts (the
kernel inherits the environment), it shrinks every size so that all notebooks run in about a minute and a half
on two cores. The executed copy stays in memory: the committed notebooks, with their full-size outputs, are
never rewritten.
"""

import os
import pathlib

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
#: Committed notebooks carry their outputs (figures at low dpi): each file stays below this many bytes.
MAX_BYTES = 300_000
CELL_TIMEOUT = 600  # seconds per cell (a cold cascade-routing compilation on a slow machine is tens of seconds)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.setenv("CASCJAX_NOTEBOOK_SMALL", "1")
    monkeypatch.delenv("ROUTERBENCH_PKL", raising=False)  # 01 falls back to the embedded example
    # At CI sizes the kernels' time is mostly XLA compiling (cascade routing: several seconds per shape);
    # LLVM's optimisation level 0 roughly halves that. Results agree to float rounding: no notebook depends on
    # the last bits.
    monkeypatch.setenv("XLA_FLAGS", f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip())
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, startup_timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except CellExecutionError as error:  # the message holds the failing cell's source and traceback
        pytest.fail(f"{path.name} failed in a cell:\n{error}", pytrace=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_and_small(path):
    size = path.stat().st_size
    assert size < MAX_BYTES, f"{path.name} is {size / 1024:.0f} KB; keep outputs small (figures at dpi <= 80)"
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    assert nb.nbformat == 4, f"{path.name} is nbformat {nb.nbformat}, not 4"
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernel is not python3"
    errors = [cell.get("id") for cell in nb.cells if cell.cell_type == "code"
              for output in cell.outputs if output.output_type == "error"]
    assert not errors, f"{path.name}: committed outputs of cells {errors} are errors"


def test_there_are_notebooks():
    assert NOTEBOOKS
