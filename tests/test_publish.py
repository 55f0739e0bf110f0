"""Offline slides and the course site (course_tools.publish), on fixture notebooks and results files.

The browser test opens built slides and a page from file:// in headless Chromium (Debian's
/usr/bin/chromium, driven by Playwright) and records every request the page makes.
"""
import base64
import io
import json
import os
import re
import shutil
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import nbformat
import pytest

from course_tools import publish

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_01 = ROOT / "notebooks" / "01_autoencoders.ipynb"
PNG_IMAGE = re.compile(r'<img[^>]*src="data:image/png;base64,')
CHROMIUM = Path(os.environ.get("LECTURE_UTILS_CHROMIUM", "/usr/bin/chromium"))


def png_bytes(color=(200, 30, 30)) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1), dpi=20)
    ax.set_facecolor([c / 255 for c in color])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def fixture_notebook(number: int, topic: str, executed: bool):
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = [md(f"# {number:02d} · The {topic} notebook\nGoals: learn $p(x)$."),
             md("## The idea\n$$ \\mathcal{L} = \\mathbb{E}[\\log p(x \\mid z)] $$"),
             code("plt.show()"),
             md("## A *widget*"),
             code("explorer")]
    nb = nbformat.v4.new_notebook(cells=cells)
    if executed:
        png = base64.b64encode(png_bytes()).decode()
        cells[2].outputs = [nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})]
        cells[2].execution_count = 1
        cells[4].outputs = [nbformat.v4.new_output("display_data", data={
            publish.WIDGET_VIEW: {"model_id": "abc", "version_major": 2, "version_minor": 0},
            "image/png": png, "text/plain": "InterpolationExplorer(...)"})]
        cells[4].execution_count = 2
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2,
                                                                                 "version_minor": 0}}
    return nb


RECORDS = {
    "01_alpha": {"notebook": "01_alpha", "budget": "smoke", "device": "cpu", "data_source": "fixture digits",
                 "wall_time_s": 12.3456, "lecture_utils": "0.1.0", "torch": "x", "python": "3.11",
                 "psnr_db": 27.123456, "beats_bicubic": True, "test_mse": {"2": {"PCA": 0.05592983}},
                 "code_sizes": [2, 16], "table": [{"a": 1}, {"a": 2}]},
    "02_beta": {"notebook": "02_beta", "budget": "standard", "device": "cuda:0", "data_source": "torchvision MNIST",
                "wall_time_s": 330.0, "presenter_mode": True, "pretrained": ["vae"], "elbo_nats": -98.7654},
}


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """Two source notebooks (01 with a current executed copy, 02 without), results files, and the built site."""
    root = tmp_path_factory.mktemp("course")
    sources, executed, results = root / "notebooks", root / "executed", root / "results"
    for folder in (sources, executed, results):
        folder.mkdir()
    nbformat.write(fixture_notebook(1, "alpha", False), sources / "01_alpha.ipynb")
    nbformat.write(fixture_notebook(2, "beta", False), sources / "02_beta.ipynb")
    time.sleep(0.01)
    nbformat.write(fixture_notebook(1, "alpha", True), executed / "01_alpha.ipynb")
    for stem, record in RECORDS.items():
        (results / f"{stem}.json").write_text(json.dumps(record))
    (results / "broken.json").write_text("{not json")
    (results / "01_alpha_samples.npz").write_bytes(b"not read")
    site = root / "site"
    index = publish.build_site(publish.course_notebooks(sources), site, executed_dir=executed, results_dir=results,
                               log=lambda message: None)
    return {"root": root, "site": site, "index": index}


class Links(HTMLParser):
    """Every URL a page refers to, by (tag, attribute), and the text of each table row by table id."""

    def __init__(self):
        super().__init__()
        self.urls, self.rows, self._table, self._row = [], {}, None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("src", "href"):
            if attrs.get(name):
                self.urls.append((tag, attrs.get("rel") or "", attrs[name]))
        if tag == "table":
            self._table = attrs.get("id")
            self.rows.setdefault(self._table, [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag == "td" and self._row is not None:
            self._row.append("")

    def handle_endtag(self, tag):
        if tag == "tr" and self._row:
            self.rows[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._row:
            self._row[-1] += data


def parse(path: Path) -> Links:
    links = Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


def test_index_tables_are_built_from_the_results_files(course):
    links = parse(course["index"])
    course_rows, result_rows = links.rows["course"], links.rows["results"]
    assert [row[0] for row in course_rows] == ["01", "02"]
    assert "The alpha notebook" in course_rows[0][1] and "The idea · A widget" in course_rows[0][1]
    assert "executed (smoke budget)" in course_rows[0][3]
    assert "not executed" in course_rows[1][3]
    assert len(result_rows) == len(RECORDS)  # one row per results file; the broken file and the .npz are skipped
    by_name = {row[0].replace("JSON", "").strip(): row for row in result_rows}
    for stem, record in RECORDS.items():
        row = by_name[stem]
        assert row[1].startswith(record["budget"]) and row[2:4] == [record["device"], record["data_source"]]
    assert by_name["01_alpha"][1] == "smoke"
    assert by_name["02_beta"][1] == "standard · presenter mode · shipped checkpoints: vae"
    assert by_name["01_alpha"][4] == "12 s" and by_name["02_beta"][4] == "5.5 min"
    alpha = by_name["01_alpha"][5]
    assert "psnr_db: 27.12" in alpha and "beats_bicubic: yes" in alpha
    assert "test_mse.2.PCA: 0.05593" in alpha and "code_sizes: 2, 16" in alpha and "table: 2 entries" in alpha
    assert "wall_time_s" not in alpha and "torch" not in alpha
    assert "elbo_nats: -98.77" in by_name["02_beta"][5] and "presenter_mode" not in by_name["02_beta"][5]
    copied = json.loads((course["site"] / "results" / "02_beta.json").read_text())
    assert copied == RECORDS["02_beta"]


def test_every_local_link_resolves_and_nothing_is_fetched_from_the_network(course):
    site = course["site"]
    pages = sorted(site.rglob("*.html"))
    names = {p.relative_to(site).as_posix() for p in pages}
    assert {"index.html", "01_alpha.html", "02_beta.html",
            "slides/01_alpha.slides.html", "slides/02_beta.slides.html"} <= names
    fetched_tags = {"script", "img", "iframe"}
    for page in pages:
        for tag, rel, url in parse(page).urls:
            parsed = urlparse(url)
            if parsed.scheme in ("http", "https") or url.startswith("//"):
                assert tag == "a", f"{page.name} fetches {url} ({tag})"
                continue
            if parsed.scheme in ("data", "mailto") or url.startswith("#"):
                continue
            if tag in fetched_tags or (tag == "link" and "stylesheet" in rel) or tag == "a":
                target = (page.parent / unquote(parsed.path)).resolve()
                assert target.is_file(), f"{page.relative_to(site)}: {tag} -> {url} does not exist"
        assert publish.fetched_external_urls(page.read_text(encoding="utf-8")) == [], page
    page = parse(site / "01_alpha.html")
    hrefs = [url for tag, _, url in page.urls if tag == "a"]
    assert hrefs[:3] == ["index.html", "02_beta.html", "slides/01_alpha.slides.html"]
    assert "notebooks/01_alpha.ipynb" in hrefs
    assert (site / "notebooks" / "01_alpha.ipynb").read_bytes() == (course["root"] / "executed" / "01_alpha.ipynb").read_bytes()


def test_pages_show_outputs_and_widget_fallbacks(course):
    executed = (course["site"] / "01_alpha.html").read_text(encoding="utf-8")
    assert len(PNG_IMAGE.findall(executed)) == 2  # the figure and the widget's static fallback
    assert publish.WIDGET_VIEW not in executed and "jupyter-widgets" not in executed
    assert "vendor/mathjax/MathJax.js?config=" in executed and "vendor/requirejs/require.js" in executed
    not_executed = (course["site"] / "02_beta.html").read_text(encoding="utf-8")
    assert not PNG_IMAGE.findall(not_executed) and "not executed" in not_executed
    slides = (course["site"] / "slides" / "01_alpha.slides.html").read_text(encoding="utf-8")
    assert "../vendor/reveal.js/dist/reveal.js" in slides and len(PNG_IMAGE.findall(slides)) == 2


def test_the_offline_check_catches_the_stock_cdn_templates():
    from nbconvert import HTMLExporter, SlidesExporter

    nb = fixture_notebook(1, "alpha", True)
    for exporter in (SlidesExporter(), HTMLExporter()):
        stock, _ = exporter.from_notebook_node(nb)
        assert publish.fetched_external_urls(stock), type(exporter).__name__
    ours = publish.slides_html(nb)
    assert publish.fetched_external_urls(ours) == []
    assert publish.fetched_external_urls('<link rel="stylesheet" href="//cdn.example/x.css">')
    assert publish.fetched_external_urls("<script type=module>import m from 'https://cdn.example/m.mjs'</script>")
    assert publish.fetched_external_urls('<a href="https://arxiv.org/abs/1406.2661">paper</a>') == []


def test_headline_metrics_limit_and_missing_results(tmp_path):
    record = {"budget": "smoke", **{f"m{i}": float(i) for i in range(15)}}
    pairs = publish.headline_metrics(record, limit=5)
    assert len(pairs) == 5 and pairs[0] == ("m0", "0") and pairs[-1] == ("…", "11 more in the JSON file")
    assert publish.read_results(tmp_path) == {}
    page = publish.index_html([], {}, "T", "now")
    assert "No results yet" in page


def test_missing_notebook_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="notebook not found"):
        publish.pick_executed(tmp_path / "09_missing.ipynb", None)


# ----------------------------------------------------------------------------- browser

TITLE_VISIBLE = """() => {
    const title = document.querySelector('.reveal .slides > section.present h1, .reveal .slides > section.present h2');
    if (!title) return false;
    const box = title.getBoundingClientRect();
    const hit = document.elementFromPoint(box.left + 5, box.top + box.height / 2);
    return hit !== null && title.contains(hit);
}"""


def _playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    return sync_playwright


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
@pytest.mark.skipif(_playwright() is None, reason="playwright is not installed (pip install -e .[test])")
def test_slides_and_page_work_offline_in_chromium(tmp_path):
    """Notebook 01's slides and page open from file:// with no request outside file:// (or data:),
    reveal.js initialises and navigates, and MathJax typesets the equations."""
    nb = nbformat.read(NOTEBOOK_01, as_version=4)
    n_slides = sum(cell.metadata.get("slideshow", {}).get("slide_type") == "slide" for cell in nb.cells)
    deck = publish.build_slides([NOTEBOOK_01], tmp_path / "slides", executed_dir=None, log=lambda m: None)[0]
    page_path = tmp_path / "page" / "01.html"
    publish.copy_vendor(page_path.parent)
    page_path.write_text(publish.page_html(nb, nav_links=[("index", "index.html")]), encoding="utf-8")
    requests, failed, errors = [], [], []
    math_done = "window.MathJax && MathJax.Hub && MathJax.Hub.queue.pending === 0 && !MathJax.Hub.queue.running"
    count_math = """() => ({typeset: document.querySelectorAll('.mjx-chtml').length,
                           errors: document.querySelectorAll('.mjx-merror, .MathJax_Error').length,
                           raw: document.body.innerText.includes('$$')})"""
    with _playwright()() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("request", lambda r: requests.append(r.url))
            page.on("requestfailed", lambda r: failed.append(r.url))
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(deck.as_uri())
            page.wait_for_selector(".reveal.ready", timeout=30_000)
            page.wait_for_function(math_done, timeout=30_000)
            sections = page.evaluate("document.querySelectorAll('.reveal .slides > section').length")
            assert sections == n_slides >= 5
            math = page.evaluate(count_math)
            assert math["typeset"] >= 3 and math["errors"] == 0 and not math["raw"], math
            first_title = page.evaluate("document.querySelector('section.present h1, section.present h2').innerText")
            for _ in range(3):
                page.keyboard.press("ArrowRight")
            page.wait_for_function("location.hash === '#/3'", timeout=10_000)
            page.wait_for_function(TITLE_VISIBLE, timeout=10_000)  # the transition has ended
            title = page.evaluate("document.querySelector('section.present h1, section.present h2').innerText")
            assert title != first_title and "PCA" in title, title
            page.screenshot(path=str(tmp_path / "slide.png"))

            page.goto(page_path.as_uri())
            page.wait_for_function(math_done, timeout=30_000)
            math = page.evaluate(count_math)
            assert math["typeset"] >= 3 and math["errors"] == 0 and not math["raw"], math
            page.screenshot(path=str(tmp_path / "page.png"), full_page=False)
        finally:
            browser.close()
    assert requests and all(url.startswith(("file://", "data:")) for url in requests), \
        [url for url in requests if not url.startswith(("file://", "data:"))]
    assert any("vendor/reveal.js/dist/reveal.js" in url for url in requests)
    assert failed == [] and errors == [], (failed, errors)
    

# ----------------------------------------------------------------------------- course.py slides / site

@pytest.fixture
def course_py(tmp_path, monkeypatch):
    """course.py with a temporary repository: 01 has a current executed copy, 02 a stale one, 03 none."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("course_cli", ROOT / "course.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "build" / "notebooks").mkdir(parents=True)
    for stem in ("01_a", "02_b", "03_c"):
        (tmp_path / "notebooks" / f"{stem}.ipynb").write_text("{}")
    now = time.time()
    for stem, age in (("01_a", -10), ("02_b", 10)):
        copy = tmp_path / "build" / "notebooks" / f"{stem}.ipynb"
        copy.write_text("{}")
        os.utime(copy, (now - age, now - age))  # 01: newer than its source; 02: older
    calls = {"run": [], "call": []}
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "setup", lambda extras=(): Path("python"))
    monkeypatch.setattr(module, "command_run", lambda args: calls["run"].append(
        ([Path(n).name for n in args.notebooks], args.budget)) or 0)
    monkeypatch.setattr(module.subprocess, "call", lambda command, **kw: calls["call"].append(command) or 0)
    return module, calls


def test_course_slides_executes_only_what_is_missing_unless_a_budget_is_given(course_py):
    module, calls = course_py
    assert module.main(["slides"]) == 0
    assert calls["run"] == [(["02_b.ipynb", "03_c.ipynb"], "smoke")]
    command = calls["call"][-1]
    assert command[1:5] == ["-m", "course_tools.publish", "slides", "--out"]
    assert [Path(c).name for c in command[6:]] == ["01_a.ipynb", "02_b.ipynb", "03_c.ipynb"]
    assert module.main(["slides", "--budget", "standard"]) == 0
    assert calls["run"][-1] == (["01_a.ipynb", "02_b.ipynb", "03_c.ipynb"], "standard")
    calls["run"].clear()
    assert module.main(["slides", "--no-execute"]) == 0 and calls["run"] == []


def test_course_site_executes_every_notebook_in_the_budget(course_py):
    module, calls = course_py
    assert module.main(["site", "--budget", "smoke"]) == 0
    assert calls["run"] == [(["01_a.ipynb", "02_b.ipynb", "03_c.ipynb"], "smoke")]
    assert calls["call"][-1][3] == "site" and calls["call"][-1][5].endswith("build/site")
    assert module.main(["site", "--reuse"]) == 0
    assert calls["run"][-1] == (["02_b.ipynb", "03_c.ipynb"], None)
