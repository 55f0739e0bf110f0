"""Offline slides and a static course site from the notebooks (``python3 course.py slides|site``).

nbconvert's reveal.js and HTML templates load reveal.js, require.js, jQuery and MathJax 2 from
CDNs.  Here every such URL points to the local copies in ``course_tools/static/vendor/``
(written by ``scripts/vendor_web_assets.py``, about 1.8 MB), which are copied beside the output,
so slides and pages open from ``file://`` with no network:

* :func:`build_slides` writes ``<out>/NN_topic.slides.html`` per notebook plus ``<out>/vendor/``;
* :func:`build_site` writes ``<out>/index.html`` (the course table and a results table built from
  ``build/results/*.json``), ``<out>/NN_topic.html`` pages, ``<out>/slides/``, the executed
  notebooks in ``<out>/notebooks/`` and the results files in ``<out>/results/``.

Both take the executed copy of a notebook from ``build/notebooks/`` when it is there and not older
than the source, else the source notebook (no outputs; the index says so).  Executing is
``course.py``'s job (``course.py run``).  Widgets cannot run without a kernel, so a widget's view is
dropped from its output and the static figure it carries beside the view is shown.

Command line (what ``course.py`` calls)::

    python -m course_tools.publish slides --out build/slides [NOTEBOOK ...]
    python -m course_tools.publish site --out build/site [NOTEBOOK ...]
"""
from __future__ import annotations

import argparse
import copy
import html
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter, SlidesExporter
from traitlets.config import Config

from lecture_utils.paths import atomic_write, repo_root

from .executed import pick_executed
from .slides import add_slide_metadata

PACKAGE = Path(__file__).resolve().parent
VENDOR = PACKAGE / "static" / "vendor"
TEMPLATES = PACKAGE / "templates"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MATHJAX_CONFIG = "TeX-AMS_CHTML-full"
RECORD_KEYS = ("notebook", "budget", "device", "data_source", "wall_time_s", "lecture_utils", "torch", "python",
               "presenter_mode", "pretrained")

# URLs a browser fetches on its own: script/img/iframe src, link href, CSS @import/url(), JS import ... from / import().
_FETCHED_URL = re.compile(
    r"""(?:<script[^>]*\bsrc|<img[^>]*\bsrc|<iframe[^>]*\bsrc|<link[^>]*\bhref)\s*=\s*["']?(https?:)?//"""
    r"""|@import\s+(?:url\()?["']?(https?:)?//|url\(\s*["']?(https?:)?//|\b(?:import|from)\s*\(?\s*["'](https?:)?//""",
    re.IGNORECASE)


def fetched_external_urls(page: str) -> list[str]:
    """The snippets of an HTML page at which a browser would fetch from the network (http(s) or ``//``).

    Links a reader clicks (``<a href>``) are not fetched and not listed.
    """
    return [page[max(0, m.start() - 20): m.end() + 60] for m in _FETCHED_URL.finditer(page)]


def copy_vendor(out_dir: Path) -> Path:
    """Copy the vendored web libraries to ``out_dir/vendor`` (files already there and equal are kept)."""
    if not (VENDOR / "reveal.js" / "dist" / "reveal.js").is_file():
        raise FileNotFoundError(f"the vendored web libraries are missing from {VENDOR}; "
                                "run python3 scripts/vendor_web_assets.py")
    target = Path(out_dir) / "vendor"
    for source in VENDOR.rglob("*"):
        if source.is_file():
            destination = target / source.relative_to(VENDOR)
            if destination.is_file() and destination.stat().st_size == source.stat().st_size:
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
    return target


def offline_notebook(nb):
    """A copy of ``nb`` for static HTML: widget state removed, each widget view replaced by its fallback.

    A widget output keeps its other representations (the course's widgets carry a PNG); one with
    nothing but a text repr gets a one-line note instead.
    """
    nb = copy.deepcopy(nb)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data")
            if not data or WIDGET_VIEW not in data:
                continue
            del data[WIDGET_VIEW]
            if set(data) <= {"text/plain"}:
                data.clear()
                data["text/html"] = "<p><em>(An interactive widget: run the notebook to use it.)</em></p>"
    return nb


def notebook_title(nb, fallback: str) -> str:
    """The first ``# `` heading of the notebook's first cell, or ``fallback``."""
    for line in "".join(nb.cells[0].source).splitlines() if nb.cells else []:
        if line.startswith("# "):
            return line[2:].strip()
    return fallback


def notebook_sections(nb) -> list[str]:
    """The ``## `` section headings, in order."""
    found = []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            first = "".join(cell.source).lstrip("\n").split("\n", 1)[0]
            if first.startswith("## "):
                found.append(re.sub(r"[*`]", "", first[3:]).strip())  # plain text: no emphasis marks
    return found


def course_notebooks(folder: Path | None = None) -> list[Path]:
    """The course's notebooks ``NN_topic.ipynb`` in ``folder`` (default: the repository's notebooks/), in order."""
    folder = Path(folder) if folder is not None else repo_root() / "notebooks"
    return sorted(folder.glob("[0-9][0-9]_*.ipynb"))


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _math_url(vendor: str) -> str:
    return f"{vendor}/mathjax/MathJax.js?config={MATHJAX_CONFIG}"


def _common_config(config, exporter: str, vendor: str) -> None:
    section = config[exporter]
    section.extra_template_basedirs = [str(TEMPLATES)]
    section.require_js_url = f"{vendor}/requirejs/require.js"
    section.jquery_url = f"{vendor}/jquery/dist/jquery.min.js"
    section.mathjax_url = _math_url(vendor)
    # Mermaid diagrams are not used by the course: the course templates leave its CDN loader out.
    section.widget_renderer_url = f"{vendor}/no-widget-renderer.js"


def slides_html(nb, vendor: str = "vendor", title: str | None = None) -> str:
    """reveal.js HTML of ``nb`` whose libraries load from the relative URL ``vendor`` (offline)."""
    config = Config()
    _common_config(config, "SlidesExporter", vendor)
    config.SlidesExporter.template_name = "course_slides"
    config.SlidesExporter.reveal_url_prefix = f"{vendor}/reveal.js"
    config.SlidesExporter.reveal_theme = "white"
    config.SlidesExporter.reveal_scroll = True
    config.SlidesExporter.reveal_number = "c/t"
    config.SlidesExporter.reveal_width = "1280"
    config.SlidesExporter.reveal_height = "800"
    config.SlidesExporter.exclude_input_prompt = True
    config.SlidesExporter.exclude_output_prompt = True
    nb = offline_notebook(nb)
    add_slide_metadata(nb)  # cells without slide metadata get the course's defaults (explicit ones win)
    if title:
        nb.metadata["title"] = title
    body, _ = SlidesExporter(config=config).from_notebook_node(nb)
    return body


def page_html(nb, vendor: str = "vendor", title: str | None = None,
              nav_links: list[tuple[str, str]] = (), note: str = "") -> str:
    """A static HTML page of ``nb`` (nbconvert's lab template, offline) with a navigation bar."""
    config = Config()
    _common_config(config, "HTMLExporter", vendor)
    config.HTMLExporter.template_name = "course_page"
    nb = offline_notebook(nb)
    if title:
        nb.metadata["title"] = title
    resources = {"course_nav": {
        "links": [(html.escape(label), html.escape(href, quote=True)) for label, href in nav_links],
        "note": html.escape(note)}}
    body, _ = HTMLExporter(config=config).from_notebook_node(nb, resources=resources)
    return body


def _check_offline(path: Path, page: str) -> None:
    external = fetched_external_urls(page)
    if external:
        raise RuntimeError(f"{path} would fetch from the network: {external[:3]}")


def build_slides(notebooks, out_dir: Path, executed_dir: Path | None = None, vendor_dir: Path | None = None,
                 log=print) -> list[Path]:
    """Write ``out_dir/NN_topic.slides.html`` for each notebook and the vendored libraries beside them.

    ``executed_dir``: where executed copies are looked for (see :func:`pick_executed`).
    ``vendor_dir``: where the libraries go (default ``out_dir/vendor``); the slides refer to it relatively.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vendor_dir = copy_vendor(out_dir) if vendor_dir is None else Path(vendor_dir)
    vendor = Path(_relative(vendor_dir, out_dir)).as_posix()
    written = []
    for notebook in notebooks:
        started = time.perf_counter()
        picked = pick_executed(notebook, executed_dir)
        nb = _read(picked.path)
        page = slides_html(nb, vendor=vendor, title=notebook_title(nb, picked.stem))
        target = out_dir / f"{picked.stem}.slides.html"
        _check_offline(target, page)
        atomic_write(target, page)
        written.append(target)
        state = "executed" if picked.executed else "NOT executed (no outputs)"
        log(f"[slides] {target.name}: {state}, {len(page) / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s")
    return written


def _relative(path: Path, start: Path) -> str:
    return os.path.relpath(Path(path).resolve(), Path(start).resolve())


# ----------------------------------------------------------------------------- results table

def _format_value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    if value is None or value == []:
        return "–"
    return str(value)


def headline_metrics(record: dict, limit: int = 10) -> list[tuple[str, str]]:
    """A results record's own metrics as (name, formatted value) pairs, at most ``limit`` of them.

    The record's bookkeeping keys (budget, device, data source, wall time, versions) are left out;
    nested dicts of numbers are flattened to dotted names (``test_mse.2.PCA``); short lists of
    numbers are joined; tables (lists of dicts) are summarised as their row count.  Past ``limit``
    a last pair says how many more are in the JSON file.
    """
    pairs: list[tuple[str, str]] = []

    def walk(name: str, value, depth: int) -> None:
        if isinstance(value, dict) and depth < 3:
            for key, inner in value.items():
                walk(f"{name}.{key}", inner, depth + 1)
        elif isinstance(value, list):
            if all(not isinstance(v, (dict, list)) for v in value) and len(value) <= 6:
                pairs.append((name, ", ".join(_format_value(v) for v in value)))
            else:
                pairs.append((name, f"{len(value)} entries (see the JSON file)"))
        elif isinstance(value, (dict,)):
            pairs.append((name, "(nested; see the JSON file)"))
        else:
            pairs.append((name, _format_value(value)))

    for key, value in record.items():
        if key not in RECORD_KEYS:
            walk(key, value, 0)
    if len(pairs) > limit:
        hidden = len(pairs) - (limit - 1)
        pairs = pairs[: limit - 1] + [("…", f"{hidden} more in the JSON file")]
    return pairs


def read_results(results_dir: Path) -> dict[str, dict]:
    """``{stem: record}`` from ``results_dir/*.json`` (records a notebook wrote with ``write_results``).

    A file that is not a JSON object is skipped with a notice.
    """
    records = {}
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError) as error:
            print(f"[site] skipping {path.name}: not readable JSON ({error})")
            continue
        if not isinstance(record, dict):
            print(f"[site] skipping {path.name}: not a results record")
            continue
        records[path.stem] = record
    return records


def _budget(record: dict) -> str:
    """The budget, and how the run was made when it was not the ordinary way (presenter mode, shipped weights)."""
    text = str(record.get("budget", "–"))
    if record.get("presenter_mode"):
        text += " · presenter mode"
    if record.get("pretrained"):
        loaded = record["pretrained"]
        text += " · shipped checkpoints: " + (", ".join(map(str, loaded)) if isinstance(loaded, list) else str(loaded))
    return text


def _wall_time(seconds) -> str:
    if not isinstance(seconds, (int, float)):
        return "–"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


_INDEX_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1100px; padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; width: 100%; margin: 1em 0 2em; font-size: 0.93em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.45em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { white-space: nowrap; }
.sections { color: #555; font-size: 0.9em; }
.warn { color: #a05a00; }
ul.metrics { margin: 0; padding-left: 1.1em; }
code { font-size: 0.92em; }
footer { color: #777; font-size: 0.85em; margin-top: 3em; }
"""


def index_html(entries: list[dict], records: dict[str, dict], course_title: str, built: str) -> str:
    """The site's index page: the course table (``entries``) and the results table (``records``)."""
    esc = html.escape
    rows = []
    for entry in entries:
        links = [f'<a href="{esc(entry["page"])}">page</a>', f'<a href="{esc(entry["slides"])}">slides</a>',
                 f'<a href="{esc(entry["notebook"])}" download>notebook</a>']
        record = records.get(entry["stem"])
        if entry["executed"]:
            state = f"executed ({esc(str(record['budget']))} budget)" if record else "executed"
        else:
            state = '<span class="warn">not executed: no outputs</span>'
        rows.append(
            f'<tr><td class="num">{esc(entry["number"])}</td>'
            f'<td><a href="{esc(entry["page"])}">{esc(entry["title"])}</a>'
            f'<div class="sections">{esc(" · ".join(entry["sections"]))}</div></td>'
            f'<td>{" · ".join(links)}</td><td>{state}</td></tr>')
    result_rows = []
    pages = {entry["stem"]: entry["page"] for entry in entries}
    for stem, record in records.items():
        name = esc(stem)
        if stem in pages:
            name = f'<a href="{esc(pages[stem])}">{name}</a>'
        metrics = "".join(f"<li><code>{esc(k)}</code>: {esc(v)}</li>" for k, v in headline_metrics(record))
        result_rows.append(
            f"<tr><td>{name}<br><a href=\"results/{esc(stem)}.json\">JSON</a></td>"
            f"<td>{esc(_budget(record))}</td><td>{esc(str(record.get('device', '–')))}</td>"
            f"<td>{esc(str(record.get('data_source', '–')))}</td>"
            f"<td class=\"num\">{esc(_wall_time(record.get('wall_time_s')))}</td>"
            f"<td><ul class=\"metrics\">{metrics}</ul></td></tr>")
    results_table = (
        "<table id=\"results\"><thead><tr><th>notebook</th><th>budget</th><th>device</th><th>data source</th>"
        "<th>wall time</th><th>headline metrics</th></tr></thead><tbody>" + "".join(result_rows) + "</tbody></table>"
        if result_rows else "<p class=\"warn\">No results yet: build/results/ holds no notebook results.</p>")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{esc(course_title)}</title>
<style>{_INDEX_STYLE}</style>
</head>
<body>
<h1>{esc(course_title)}</h1>
<p>An ordered series of notebooks on generative models for images. Each notebook is here as a page
(executed, with its figures), as reveal.js slides (arrow keys; <kbd>s</kbd> opens the speaker view),
and as the executed notebook to download.</p>
<h2>Course</h2>
<table id="course"><thead><tr><th>#</th><th>notebook</th><th>open</th><th>state</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<h2>Results</h2>
<p>The headline numbers each notebook recorded in <code>build/results/</code>: the budget it ran in
(<code>smoke</code>, <code>standard</code> or <code>full</code>), the device, where its data came from,
and how long it took.</p>
{results_table}
<footer>Built {esc(built)} by <code>python3 course.py site</code>. Works offline: every script and
style sheet is local (reveal.js, require.js, MathJax in <code>vendor/</code>).</footer>
</body>
</html>
"""


def build_site(notebooks, out_dir: Path, executed_dir: Path | None = None, results_dir: Path | None = None,
               course_title: str = "Generative Models for Vision", log=print) -> Path:
    """Write the static course site into ``out_dir`` and return the path of its ``index.html``.

    ``notebooks``: source notebooks in course order; ``executed_dir``: executed copies (see
    :func:`pick_executed`); ``results_dir``: the ``*.json`` results files for the results table.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    vendor_dir = copy_vendor(out_dir)
    (out_dir / "notebooks").mkdir(exist_ok=True)
    notebooks = [Path(n) for n in notebooks]
    picked = [pick_executed(n, executed_dir) for n in notebooks]
    build_slides([p.source for p in picked], out_dir / "slides", executed_dir=executed_dir,
                 vendor_dir=vendor_dir, log=log)
    entries = []
    for index, item in enumerate(picked):
        started = time.perf_counter()
        nb = _read(item.path)
        title = notebook_title(nb, item.stem)
        links = [("← course index", "index.html")]
        if index > 0:
            links.append((f"← {picked[index - 1].stem}", f"{picked[index - 1].stem}.html"))
        if index + 1 < len(picked):
            links.append((f"{picked[index + 1].stem} →", f"{picked[index + 1].stem}.html"))
        links += [("slides", f"slides/{item.stem}.slides.html"), ("notebook (.ipynb)", f"notebooks/{item.source.name}")]
        note = "" if item.executed else "not executed: this page has no outputs (python3 course.py site executes it)"
        page = page_html(nb, vendor="vendor", title=title, nav_links=links, note=note)
        target = out_dir / f"{item.stem}.html"
        _check_offline(target, page)
        atomic_write(target, page)
        shutil.copyfile(item.path, out_dir / "notebooks" / item.source.name)
        number, _, _ = item.stem.partition("_")
        entries.append({"stem": item.stem, "number": number, "title": title, "sections": notebook_sections(nb),
                        "page": target.name, "slides": f"slides/{item.stem}.slides.html",
                        "notebook": f"notebooks/{item.source.name}", "executed": item.executed})
        log(f"[site] {target.name}: {'executed' if item.executed else 'NOT executed'}, "
            f"{len(page) / 1e6:.1f} MB, {time.perf_counter() - started:.1f} s")
    records = read_results(results_dir) if results_dir is not None else {}
    if records:
        (out_dir / "results").mkdir(exist_ok=True)
        for stem in records:
            shutil.copyfile(Path(results_dir) / f"{stem}.json", out_dir / "results" / f"{stem}.json")
    index = out_dir / "index.html"
    atomic_write(index, index_html(entries, records, course_title, time.strftime("%Y-%m-%d %H:%M")))
    log(f"[site] {index}: {len(entries)} notebooks, {len(records)} results")
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build offline slides or the static course site.")
    parser.add_argument("what", choices=("slides", "site"), help="what to build")
    parser.add_argument("notebooks", nargs="*", type=Path, help="source notebooks (default: all of notebooks/)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--executed", type=Path, default=repo_root() / "build" / "notebooks",
                        help="folder of executed copies (default: build/notebooks)")
    parser.add_argument("--results", type=Path, default=repo_root() / "build" / "results",
                        help="folder of results JSON files (site only; default: build/results)")
    args = parser.parse_intermixed_args(argv)
    notebooks = args.notebooks or course_notebooks()
    if not notebooks:
        print("no notebooks found", file=sys.stderr)
        return 1
    if args.what == "slides":
        build_slides(notebooks, args.out, executed_dir=args.executed)
    else:
        build_site(notebooks, args.out, executed_dir=args.executed, results_dir=args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
