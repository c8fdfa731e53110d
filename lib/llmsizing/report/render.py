"""Execute report notebooks and render them to HTML and PDF.

This is the only module that touches papermill, nbconvert and WeasyPrint; each is imported
inside the function that needs it, so ``import llmsizing`` stays light.

Pipeline, one scenario at a time::

    execute_notebook(notebooks/x.ipynb, run/report.ipynb, params)   # papermill, kernel python3
    notebook_to_html(run/report.ipynb, run/report.html, meta)        # nbconvert, templates/report
    html_to_pdf(run/report.html, run/report.pdf)                     # WeasyPrint, no LaTeX/browser

Every output is written to a temporary file in the destination folder and moved into place
with :func:`os.replace`, so a failure never leaves a half-written report behind.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from llmsizing import __version__
from llmsizing.errors import RenderError

__all__ = [
    "KERNEL_NAME",
    "TEMPLATE_DIR",
    "TEMPLATE_NAME",
    "execute_notebook",
    "html_to_pdf",
    "notebook_to_html",
    "pdf_text",
]

#: Jupyter kernel used to execute report notebooks (ipykernel's default kernelspec).
KERNEL_NAME = "python3"
#: Folder holding nbconvert template directories shipped with the package.
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
#: The nbconvert template directory under TEMPLATE_DIR used for reports.
TEMPLATE_NAME = "report"

#: Cells carrying these tags are dropped from the report entirely.
REMOVE_CELL_TAGS = frozenset({"remove-cell"})
#: Cells carrying these tags keep their outputs but never show their source.
REMOVE_INPUT_TAGS = frozenset({"remove-input"})
#: Cells carrying these tags keep their source (hidden anyway) but lose their outputs.
REMOVE_OUTPUT_TAGS = frozenset({"remove-output"})

#: Keys of notebook metadata ``metadata.llmsizing`` that the template reads.
META_KEYS = ("customer", "title", "scenario", "date", "version")


# --------------------------------------------------------------------------- helpers


def _file_mode() -> int:
    """Mode a plain ``open(path, "w")`` would give a new file (0o666 less the umask).

    ``tempfile.mkstemp`` creates files 0o600; reports are meant to be shared.
    """
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _one_line(text: object, limit: int = 300) -> str:
    """Collapse whitespace so a message fits on one line; shorten very long text."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@contextlib.contextmanager
def _atomic_target(path: str | os.PathLike[str], suffix: str) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` only on success.

    The temporary file lives in the destination folder so :func:`os.replace` is an atomic
    rename on the same file system. On any exception it is deleted and ``path`` is left as
    it was (absent, or the previous complete version).
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.stem}.", suffix=f".tmp{suffix}")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, _file_mode())
        os.replace(tmp, final)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


#: Matplotlib backend the report kernel must use so figures become notebook outputs.
INLINE_BACKEND = "module://matplotlib_inline.backend_inline"


@contextlib.contextmanager
def _report_kernel_env() -> Iterator[None]:
    """Make the kernel papermill starts draw figures inline, whatever the caller's MPLBACKEND.

    The kernel inherits this process's environment; an inherited ``MPLBACKEND=Agg`` (common
    in test suites and headless servers) would silently drop every figure from the report.
    papermill offers no per-kernel environment, and already changes the process's working
    directory for ``cwd``, so execution is not thread-safe either way: run scenarios in
    parallel with processes, not threads.
    """
    old = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = INLINE_BACKEND
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = old


def _failed_path(output_path: Path) -> Path:
    """Where a partially executed notebook is kept: ``report.ipynb`` -> ``report.failed.ipynb``."""
    return output_path.with_name(f"{output_path.stem}.failed{output_path.suffix or '.ipynb'}")


# --------------------------------------------------------------------------- execute


def execute_notebook(
    notebook_path: str | os.PathLike[str],
    output_path: str | os.PathLike[str],
    parameters: Mapping[str, Any],
    cwd: str | os.PathLike[str] | None = None,
    *,
    timeout_s: float | None = None,
) -> None:
    """Execute ``notebook_path`` with papermill, injecting ``parameters``; save to ``output_path``.

    ``parameters`` must already be validated primitives (the scenario layer's job): papermill
    only warns about unknown names. ``cwd`` is the kernel's working directory (papermill's
    default, the caller's working directory, when None). ``timeout_s`` bounds each cell.

    On a failing cell, raises :class:`~llmsizing.errors.RenderError` with a one-line message
    naming the notebook, the cell and its error; the partially executed notebook, with
    papermill's error banner, is kept beside the output as ``<stem>.failed.ipynb`` and its
    path is in the message. ``output_path`` itself is only ever a complete notebook.
    """
    import papermill as pm
    from papermill.exceptions import PapermillException, PapermillExecutionError

    notebook = Path(notebook_path)
    output = Path(output_path)
    if not notebook.is_file():
        raise RenderError(f"Report notebook {str(notebook)!r} does not exist; check the scenario's notebook path.")

    try:
        with _atomic_target(output, ".ipynb") as tmp, _report_kernel_env():
            try:
                pm.execute_notebook(
                    str(notebook),
                    str(tmp),
                    parameters=dict(parameters),
                    kernel_name=KERNEL_NAME,
                    language="python",
                    progress_bar=False,
                    log_output=False,
                    cwd=None if cwd is None else str(cwd),
                    execution_timeout=timeout_s,
                    # keep ipykernel's start-up log (e.g. its TCP-transport warning) off the console:
                    # the report's own messages are the one line the command prints
                    extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
                )
            except PapermillExecutionError as exc:
                failed = _failed_path(output)
                with contextlib.suppress(OSError):
                    os.replace(tmp, failed)
                raise RenderError(
                    f"Notebook {str(notebook)!r} failed in cell In [{exc.exec_count}]: "
                    f"{exc.ename}: {_one_line(exc.evalue)} (partial run kept in {str(failed)!r})"
                ) from exc
    except RenderError:
        raise
    except PapermillException as exc:
        raise RenderError(f"Notebook {str(notebook)!r} could not be executed: {_one_line(exc)}") from exc
    except Exception as exc:
        # Kernel death, cell timeouts and kernel start failures come from nbclient/jupyter_client.
        module = type(exc).__module__ or ""
        if module.startswith(("nbclient", "jupyter_client")) or isinstance(exc, TimeoutError):
            raise RenderError(
                f"Notebook {str(notebook)!r} could not be executed with kernel {KERNEL_NAME!r}: "
                f"{type(exc).__name__}: {_one_line(exc)}"
            ) from exc
        raise


# --------------------------------------------------------------------------- HTML


def _prepare_notebook(nb: Any, meta: Mapping[str, Any], default_title: str) -> None:
    """Merge cover metadata into ``nb.metadata.llmsizing`` and drop what a report never shows.

    Drops every stream output (stdout and stderr: report content goes through ``display``)
    and every error output. Fills ``date`` (today) and ``version`` (this library) if absent.
    """
    from nbformat import from_dict

    merged: dict[str, Any] = dict(nb.metadata.get("llmsizing", {}))
    merged.update({k: v for k, v in meta.items() if v is not None})
    merged.setdefault("title", default_title)
    merged.setdefault("date", _dt.date.today().isoformat())
    merged.setdefault("version", __version__)
    nb.metadata["llmsizing"] = from_dict({k: (v if isinstance(v, (dict, list)) else str(v)) for k, v in merged.items()})

    for cell in nb.cells:
        if cell.get("cell_type") == "code":
            cell.outputs = [o for o in cell.get("outputs", []) if o.get("output_type") not in ("stream", "error")]


def notebook_to_html(
    executed_ipynb_path: str | os.PathLike[str],
    html_path: str | os.PathLike[str],
    meta: Mapping[str, Any],
) -> None:
    """Render an executed notebook to one self-contained HTML file with no code in it.

    ``meta`` supplies the cover: ``customer``, ``title``, ``scenario``, ``date`` and
    ``version`` (see :data:`META_KEYS`); it is merged over any ``metadata.llmsizing`` already in
    the notebook. Values are escaped by the template. Cells tagged ``remove-cell`` are
    dropped, ``remove-output`` cells lose their outputs, inputs are never shown, prompts,
    streams and tracebacks are removed, and images are embedded as base64.
    """
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    src = Path(executed_ipynb_path)
    try:
        nb = nbformat.read(src, as_version=4)
    except (OSError, ValueError) as exc:  # nbformat's NotJSONError is a ValueError
        raise RenderError(f"Cannot read executed notebook {str(src)!r}: {_one_line(exc)}") from exc

    _prepare_notebook(nb, meta, default_title=src.stem)

    c = Config()
    c.TagRemovePreprocessor.enabled = True
    c.TagRemovePreprocessor.remove_cell_tags = set(REMOVE_CELL_TAGS)
    c.TagRemovePreprocessor.remove_input_tags = set(REMOVE_INPUT_TAGS)
    c.TagRemovePreprocessor.remove_all_outputs_tags = set(REMOVE_OUTPUT_TAGS)
    c.HTMLExporter.preprocessors = ["nbconvert.preprocessors.TagRemovePreprocessor"]

    exporter = HTMLExporter(
        config=c,
        template_name=TEMPLATE_NAME,
        extra_template_basedirs=[str(TEMPLATE_DIR)],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    resources = {"metadata": {"name": nb.metadata["llmsizing"]["title"], "path": str(src.parent)}}
    try:
        body, _ = exporter.from_notebook_node(nb, resources=resources)
    except Exception as exc:
        raise RenderError(
            f"Cannot render {str(src)!r} to HTML with template {TEMPLATE_NAME!r} "
            f"from {str(TEMPLATE_DIR)!r}: {type(exc).__name__}: {_one_line(exc)}"
        ) from exc

    with _atomic_target(html_path, ".html") as tmp:
        tmp.write_text(body, encoding="utf-8")


# --------------------------------------------------------------------------- PDF


#: A page whose content reaches less than this share of the text area is "near-empty" (the cover excepted).
MIN_PAGE_FILL = 0.25
#: Passes of :func:`_balance_pages` (each re-lays out the document once).
MAX_LAYOUT_PASSES = 4
#: The class the report gives a level-1 heading that starts a new page (llmsizing.report.sections.Heading).
PAGE_BREAK_CLASS = "llmsizing-page-break"


def _page_fill(page: Any) -> float:
    """How far down its text area a laid-out WeasyPrint page's content reaches (0 to 1)."""
    from weasyprint.formatting_structure import boxes

    box = page._page_box
    top, height = box.content_box_y(), box.height
    lowest = top
    for child in box.children:
        if isinstance(child, boxes.MarginBox):
            continue
        for b in child.descendants():
            if isinstance(b, (boxes.TextBox, boxes.ReplacedBox)) and b.height:
                lowest = max(lowest, b.position_y + b.height)
    return (lowest - top) / height if height else 1.0


def _break_heading(page: Any) -> str | None:
    """The id of the page-break heading that starts ``page``, if one does."""
    from weasyprint.formatting_structure import boxes

    for child in page._page_box.children:
        if isinstance(child, boxes.MarginBox):
            continue
        for b in child.descendants():
            el = getattr(b, "element", None)
            if el is not None and PAGE_BREAK_CLASS in (el.get("class") or "") and el.get("id"):
                return el.get("id")
            if isinstance(b, (boxes.TextBox, boxes.ReplacedBox)):
                return None     # content before any heading
    return None


def _balance_pages(source: str, base_url: str) -> Any:
    """Lay out the report; where a page (not the cover) is near-empty, let the section after it (or the
    section it ends) flow on instead of starting a new page, and lay out again."""
    import weasyprint

    doc = weasyprint.HTML(string=source, base_url=base_url).render(presentational_hints=True)
    for _ in range(MAX_LAYOUT_PASSES):
        fills = [_page_fill(p) for p in doc.pages]
        starts = [_break_heading(p) for p in doc.pages]
        unforce: set[str] = set()
        for i in range(1, len(doc.pages)):
            if fills[i] >= MIN_PAGE_FILL:
                continue
            if i + 1 < len(doc.pages) and starts[i + 1]:
                unforce.add(starts[i + 1])          # a short section: pull the next one up
            else:
                earlier = [h for h in starts[2:i + 1] if h]
                if earlier:
                    unforce.add(earlier[-1])        # a section's short tail: let the section start mid-page
        if not unforce:
            break
        for heading in unforce:
            source = source.replace(f'class="{PAGE_BREAK_CLASS}" id="{heading}"', f'id="{heading}"')
        doc = weasyprint.HTML(string=source, base_url=base_url).render(presentational_hints=True)
    return doc


def html_to_pdf(html_path: str | os.PathLike[str], pdf_path: str | os.PathLike[str]) -> None:
    """Typeset an HTML report to PDF with WeasyPrint (A4, page numbers from the stylesheet).

    Sections start on a new page unless that would leave a page nearly empty (see
    :func:`_balance_pages`).
    """
    src = Path(html_path)
    if not src.is_file():
        raise RenderError(f"HTML report {str(src)!r} does not exist; render it before the PDF.")
    try:
        import weasyprint  # noqa: F401 - fails early, with advice, when the system libraries are missing
    except OSError as exc:  # Pango/HarfBuzz shared libraries missing
        raise RenderError(
            f"WeasyPrint cannot load its system libraries ({_one_line(exc)}); run 'make sysdeps'."
        ) from exc

    with _atomic_target(pdf_path, ".pdf") as tmp:
        try:
            doc = _balance_pages(src.read_text(encoding="utf-8"), str(src.parent))
            doc.write_pdf(str(tmp))
        except Exception as exc:
            raise RenderError(f"Cannot typeset {str(src)!r} to PDF: {type(exc).__name__}: {_one_line(exc)}") from exc


def pdf_text(pdf_path: str | os.PathLike[str]) -> str:
    """Extract the text of every page of a PDF (pages joined by form feeds), for tests and checks."""
    from pypdf import PdfReader

    reader = PdfReader(str(pdf_path))
    return "\f".join(page.extract_text() or "" for page in reader.pages)
