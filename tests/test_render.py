"""End-to-end tests of llmsizing.render: papermill -> nbconvert (templates/report) -> WeasyPrint.

A tiny notebook is built with nbformat, executed once per module (a kernel start costs
seconds), rendered to HTML and PDF, and both are inspected as a reader would see them.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from llmsizing import __version__
from llmsizing.errors import RenderError, SizingError
from llmsizing.report.render import execute_notebook, html_to_pdf, notebook_to_html, pdf_text

pytestmark = [pytest.mark.render, pytest.mark.notebook, pytest.mark.slow]

EVIL_CUSTOMER = "<script>alert(1)</script>"
TITLE = "Serving DeepSeek-R1 Distill on H100"
SCENARIO = "render-smoke"
DATE = "2031-02-03"


def _weasyprint_usable() -> bool:
    try:
        import weasyprint  # noqa: F401
    except OSError:  # Pango/HarfBuzz libraries missing: run `make sysdeps`
        return False
    return True


needs_weasyprint = pytest.mark.skipif(not _weasyprint_usable(), reason="WeasyPrint system libraries missing")


def _build_notebook(path: Path) -> None:
    nb = new_notebook()
    nb.cells = [
        new_markdown_cell("# Sizing summary\n\nThe table below lists the recommended accelerators."),
        new_code_cell('gpu_name = "placeholder-gpu"\nusers = 1', metadata={"tags": ["parameters"]}),
        new_code_cell(
            "import sys\n"
            "import pandas as pd\n"
            "import matplotlib.pyplot as plt\n"
            "from IPython.display import display\n"
            "df = pd.DataFrame({'Accelerator': [gpu_name, 'A100-SXM-80GB'],\n"
            "                   'Users served': [users * 10, users * 4]})\n"
            "display(df)\n"
            "fig, ax = plt.subplots(figsize=(4, 2.5))\n"
            "ax.bar(df['Accelerator'], df['Users served'])\n"
            "ax.set_title('Users per accelerator')\n"
            "display(fig)\n"
            "plt.close(fig)\n"
            "print('stdout-debug-noise')\n"
            "print('stderr-warning-noise', file=sys.stderr)\n"
        ),
        new_code_cell("print('REMOVED-CELL-MARKER')", metadata={"tags": ["remove-cell"]}),
        new_markdown_cell("## Notes\n\nEstimates assume the stated utilisation."),
    ]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("render")
    src = root / "report_src.ipynb"
    _build_notebook(src)
    out = root / "run" / "report.ipynb"
    html = root / "run" / "report.html"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MPLBACKEND", "Agg")  # render must still get inline figures from the kernel
        execute_notebook(src, out, {"gpu_name": "H100-SXM-80GB", "users": 3}, cwd=root)
        assert os.environ["MPLBACKEND"] == "Agg", "execute_notebook must restore MPLBACKEND"
    notebook_to_html(
        out,
        html,
        {"customer": EVIL_CUSTOMER, "title": TITLE, "scenario": SCENARIO, "date": DATE, "version": __version__},
    )
    return {"root": root, "src": src, "ipynb": out, "html": html}


def test_execute_writes_notebook_with_injected_parameters(rendered):
    nb = nbformat.read(rendered["ipynb"], as_version=4)
    assert nb.metadata["papermill"]["parameters"] == {"gpu_name": "H100-SXM-80GB", "users": 3}
    assert not list(rendered["ipynb"].parent.glob(".*.tmp*")), "temporary file left behind"


def test_outputs_get_normal_file_mode(rendered):
    umask = os.umask(0)
    os.umask(umask)
    for key in ("ipynb", "html"):
        assert stat.S_IMODE(rendered[key].stat().st_mode) == 0o666 & ~umask, key


def test_html_has_content_and_no_code(rendered):
    html = rendered["html"].read_text(encoding="utf-8")
    assert "H100-SXM-80GB" in html and "Users served" in html  # DataFrame, with the injected value
    assert "<td>30</td>" in html  # users=3 injected: 3 * 10
    assert "placeholder-gpu" not in html
    assert "Sizing summary" in html  # markdown kept
    assert re.search(r"<img[^>]+src=\"data:image/png;base64,", html), "figure not embedded"
    for forbidden in ("In&nbsp;[", "In [", "Out[", "import pandas", "plt.subplots", "gpu_name ="):
        assert forbidden not in html, forbidden
    for noise in ("stdout-debug-noise", "stderr-warning-noise", "REMOVED-CELL-MARKER"):
        assert noise not in html, noise


def test_html_cover_escapes_customer(rendered):
    html = rendered["html"].read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower(), "a live <script> tag is in the report"
    assert TITLE in html and SCENARIO in html and DATE in html and __version__ in html
    assert f"<title>{TITLE}</title>" in html


@needs_weasyprint
def test_pdf_text(rendered):
    pdf = rendered["root"] / "run" / "report.pdf"
    html_to_pdf(rendered["html"], pdf)
    assert pdf.read_bytes().startswith(b"%PDF-")
    text = pdf_text(pdf)
    flat = " ".join(text.split())
    assert "H100-SXM-80GB" in flat and "Users served" in flat
    assert "Sizing summary" in flat
    assert EVIL_CUSTOMER in flat, "customer name must appear as literal text"
    assert TITLE in flat
    assert "Page 1 of" in flat
    pages = re.findall(r"Page (\d+) of (\d+)", flat)
    assert pages and all(total == pages[0][1] for _, total in pages)
    assert len(pages) == int(pages[0][1]) >= 2  # cover page + body
    for forbidden in ("In [", "Out[", "import", "plt.", "stdout-debug-noise", "stderr-warning-noise"):
        assert forbidden not in flat, forbidden


def test_failing_cell_raises_one_line_render_error(tmp_path):
    nb = new_notebook(cells=[new_code_cell("x = 1"), new_code_cell("raise ValueError('bad assumption\\nsecond line')")])
    src = tmp_path / "broken.ipynb"
    nbformat.write(nb, src)
    out = tmp_path / "out" / "report.ipynb"
    with pytest.raises(RenderError) as info:
        execute_notebook(src, out, {}, cwd=tmp_path)
    msg = str(info.value)
    assert isinstance(info.value, SizingError)
    assert "\n" not in msg
    assert "broken.ipynb" in msg and "ValueError" in msg and "bad assumption" in msg
    assert not out.exists(), "a failed run must not leave report.ipynb"
    assert (tmp_path / "out" / "report.failed.ipynb").exists()
    assert not list((tmp_path / "out").glob(".*.tmp*"))


def test_missing_inputs_raise_render_error(tmp_path):
    with pytest.raises(RenderError, match="does not exist"):
        execute_notebook(tmp_path / "nope.ipynb", tmp_path / "out.ipynb", {})
    with pytest.raises(RenderError, match="does not exist"):
        html_to_pdf(tmp_path / "nope.html", tmp_path / "out.pdf")
    assert not (tmp_path / "out.pdf").exists()
    assert not list(tmp_path.glob(".*.tmp*"))
