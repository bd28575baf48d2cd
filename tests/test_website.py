"""The built website, as a reader's browser sees it (headless Chromium from the system, no download).

Needs the site built first (`make book`; .ci/run builds it before the tests) and Debian's
`chromium` package; without either the tests are skipped with the reason. Screenshots of the
home page and a chapter are saved to _build/screenshots/ for review.

COURSE_SITE=<folder> tests another build of the site instead of _build/html, e.g. one made without
executing the chapters while working on the theme (its screenshots go to <folder>/../screenshots):

    jupyter-book build . --path-output /tmp/site --config <a copy of _config.yml with execute_notebooks: "off">
    COURSE_SITE=/tmp/site/_build/html python -m pytest tests/test_website.py

Such a build has no outputs: the checks of outputs (tables, long printed lines) pass there vacuously.
"""

import functools
import http.server
import os
import re
import shutil
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
SITE = Path(os.environ["COURSE_SITE"]).resolve() if os.environ.get("COURSE_SITE") else REPO / "_build" / "html"
SCREENSHOTS = SITE.parent / "screenshots"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Without the background-networking flags Chromium keeps trying to reach Google's hosts.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
GENERATED_PAGES = {"genindex.html", "search.html"}

pytestmark = [
    pytest.mark.skipif(not (SITE / "index.html").exists(), reason="the website is not built: run `make book` first"),
    pytest.mark.skipif(CHROMIUM is None, reason="Chromium is absent: `apt-get install chromium` to run the browser tests"),
]


def site_pages() -> list[Path]:
    if not SITE.exists():
        return []
    return sorted(
        path
        for path in SITE.rglob("*.html")
        if not {"_static", "_sources", "mathjax", "_images"} & set(path.relative_to(SITE).parts)
    )


PAGES = site_pages()


class LinkCollector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids, self.icons = [], set(), []
        self.redirect = None  # target of a <meta http-equiv="refresh" content="0; url=...">

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.ids.add(attrs["id"])
        if tag == "a" and attrs.get("href"):
            self.links.append(attrs["href"])
        if tag in ("img", "script") and attrs.get("src"):
            self.links.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.links.append(attrs["href"])
            if "icon" in (attrs.get("rel") or "").split():
                self.icons.append(attrs["href"])
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            self.redirect = (attrs.get("content") or "").partition("url=")[2] or None
            if self.redirect:
                self.links.append(self.redirect)


@functools.cache
def parsed(page: Path) -> LinkCollector:
    collector = LinkCollector()
    collector.feed(page.read_text(encoding="utf-8"))
    return collector


@pytest.fixture(scope="module")
def server():
    handler = functools.partial(QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def watch(page):
    page.problems = []
    page.on("console", lambda message: message.type == "error" and page.problems.append(f"console: {message.text} ({message.location.get('url')})"))
    page.on("pageerror", lambda error: page.problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: page.problems.append(f"request failed: {request.url}"))
    page.on("response", lambda response: response.status >= 400 and page.problems.append(f"HTTP {response.status}: {response.url}"))


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    watch(page)
    yield page
    context.close()


def url_of(server: str, page: Path) -> str:
    return f"{server}/{page.relative_to(SITE).as_posix()}"


def ids(pages):
    return [str(p.relative_to(SITE)) for p in pages]


@pytest.fixture(scope="module")
def opened(request, server, browser):
    """The page ``request.param`` opened once at 1280 px in the light theme, typeset and settled, with what went wrong
    while it loaded (``problems``) and every URL it requested (``requests``). Tests parametrized with it indirectly
    share one opening per page (pytest runs each page's tests together): they only read it; the one that changes it
    (the dark theme of the axe audit) puts it back."""
    html = request.param
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.problems, page.requests = [], []
    page.on("request", lambda request: page.requests.append(request.url))
    watch(page)
    open_page(page, server, html)
    yield page
    context.close()


@pytest.mark.parametrize("opened", PAGES, ids=ids(PAGES), indirect=True)
def test_page_loads_without_errors_and_every_image_loads(opened):
    broken = opened.evaluate("Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
    assert broken == [], f"images that did not load: {broken}"
    assert opened.problems == [], "\n".join(opened.problems)


@pytest.mark.parametrize("html", PAGES, ids=[str(p.relative_to(SITE)) for p in PAGES])
def test_every_page_declares_an_icon(html):
    # A page without <link rel="icon"> makes the browser ask for /favicon.ico, which the site does
    # not have: a 404 in the reader's console. The root redirect (index.html) is the page that lacked
    # it; it declares an empty data: icon, which fetches nothing. That each icon file exists is
    # checked with every other link by test_internal_links_resolve.
    assert parsed(html).icons, f"{html.name} declares no icon"


@pytest.mark.parametrize("html", [p for p in PAGES if p.name not in GENERATED_PAGES], ids=lambda p: str(p.relative_to(SITE)))
def test_images_have_alt_text(html):
    text = html.read_text(encoding="utf-8")
    images = re.findall(r"<img\b[^>]*>", text)
    missing = [tag for tag in images if not re.search(r'\balt="[^"]+"', tag) and "logo" not in tag]
    assert missing == [], f"{len(missing)} images without alt text, e.g. {missing[:1]}"


@pytest.mark.parametrize("html", PAGES, ids=[str(p.relative_to(SITE)) for p in PAGES])
def test_internal_links_resolve(html):
    broken = []
    for link in parsed(html).links:
        parts = urlsplit(link)
        if parts.scheme or link.startswith(("//", "mailto:", "javascript:")):
            continue
        target = (html.parent / unquote(parts.path)).resolve() if parts.path else html
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            broken.append(link)
        elif parts.fragment and target.suffix == ".html" and parts.fragment not in parsed(target).ids:
            broken.append(link)
    assert broken == [], f"links that lead nowhere: {broken}"


@pytest.mark.parametrize("html", PAGES, ids=[str(p.relative_to(SITE)) for p in PAGES])
def test_no_stray_object_reprs_in_outputs(html):
    """A cell that ends with `torch.manual_seed(0)` or `plt.plot(...)` prints `<... at 0x7f...>`: noise for a reader."""
    stray = re.findall(r"&lt;[\w.]+(?: object)? at 0x[0-9a-f]+&gt;", html.read_text(encoding="utf-8"))
    assert stray == [], f"end the cell with ';' or assign the value: {stray}"


EXECUTABLE_PAGES = [p for p in PAGES if p.parent.name == "chapters" or p.parent.parent.name == "exercises"]


@pytest.mark.parametrize("html", EXECUTABLE_PAGES, ids=lambda p: str(p.relative_to(SITE)))
def test_executable_pages_have_launch_download_and_edit_buttons(html):
    """Binder and Colab open a notebook that is in the repository; edit leads to the file an author edits."""
    from course.notebooks import repository_url

    repository = repository_url()
    owner_and_name = urlsplit(repository).path.strip("/")
    page = html.relative_to(SITE).with_suffix("")  # chapters/ch03_attention or exercises/ch03_attention/ch03_attention
    notebook = page.with_suffix(".ipynb").as_posix()
    edited = page.with_suffix(".md") if page.parts[0] == "chapters" else Path("solutions") / f"{page.name}.py"
    depth = "../" * (len(page.parts) - 1)
    expected = {
        "Binder": f"https://mybinder.org/v2/gh/{owner_and_name}/main?urlpath=lab/tree/{notebook}",
        "Colab": f"https://colab.research.google.com/github/{owner_and_name}/blob/main/{notebook}",
        "repository": repository,
        "suggest edit": f"{repository}/edit/main/{edited.as_posix()}",
        "download .ipynb": f"{depth}_sources/{notebook}",
    }
    if page.parts[0] == "chapters":
        expected["download .md"] = f"{depth}_sources/{page.as_posix()}.md"
    links = set(parsed(html).links)
    missing = {button: url for button, url in expected.items() if url not in links}
    assert not missing, f"buttons missing or pointing elsewhere: {missing}"
    assert (REPO / notebook).exists() and (REPO / edited).exists(), "a launch or edit button names a file the repository lacks"


def pages_with_math() -> list[Path]:
    return [page for page in PAGES if 'class="math' in page.read_text(encoding="utf-8")]


@pytest.mark.parametrize("opened", pages_with_math(), ids=ids(pages_with_math()), indirect=True)
def test_math_is_rendered_by_the_bundled_mathjax(server, opened):
    unrendered = opened.evaluate(
        "Array.from(document.querySelectorAll('.math')).filter(e => !e.querySelector('mjx-container')).length"
    )
    assert unrendered == 0, f"{unrendered} formulas were not typeset"
    assert any("/mathjax/tex-chtml.js" in url for url in opened.requests)
    assert not [url for url in opened.requests if not url.startswith(server)], "the page fetched something from outside"
    assert opened.problems == [], "\n".join(opened.problems)


@pytest.mark.parametrize("width", [1280, 400])
def test_one_search_button_and_a_sidebar_toggle_at_desktop_and_phone_width(server, page, width):
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(url_of(server, SITE / "chapters" / "ch03_attention.html"), wait_until="load")
    visible_search = [b for b in page.locator("button.search-button__button").all() if b.is_visible()]
    assert len(visible_search) == 1, f"{len(visible_search)} search buttons visible at width {width}"
    assert page.locator(".bd-header-article button.primary-toggle").is_visible()


def test_search_finds_a_term_of_the_course(server, page):
    page.goto(f"{server}/search.html?q=softmax", wait_until="load")
    page.wait_for_selector("#search-results ul.search li", timeout=20_000)
    titles = page.locator("#search-results ul.search li a").all_inner_texts()
    assert any("Attention" in title for title in titles), titles


def test_screenshots_of_home_page_and_a_chapter(server, page):
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for name, html in (("home", SITE / "index.html"), ("chapter03", SITE / "chapters" / "ch03_attention.html")):
        page.goto(url_of(server, html), wait_until="networkidle")
        if html.name != "index.html":
            page.wait_for_selector("mjx-container", state="attached", timeout=20_000)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        assert path.stat().st_size > 10_000


CHAPTER_PAGES = [p for p in PAGES if p.parent.name == "chapters"]
EXERCISE_PAGES = [p for p in PAGES if p.parent.parent.name == "exercises"]


@pytest.mark.parametrize("opened", CHAPTER_PAGES, ids=ids(CHAPTER_PAGES), indirect=True)
def test_figures_are_numbered_per_chapter(request, opened):
    """Chapter 7's figures read "Fig. 7.1", "Fig. 7.2", ..., in the captions and in the text's references."""
    page, html = opened, request.node.callspec.params["opened"]
    chapter = int(re.match(r"ch(\d+)_", html.stem).group(1))
    captions = [text.strip() for text in page.locator("figure .caption-number").all_inner_texts()]
    assert captions == [f"Fig. {chapter}.{k}" for k in range(1, len(captions) + 1)], captions
    references = page.eval_on_selector_all(
        "a.reference:has(span.std-numref)", "links => links.map(a => [a.getAttribute('href'), a.innerText.trim()])"
    )
    figures = [(href, text) for href, text in references if text.startswith("Fig.")]
    # A reference to a figure of this page names this chapter; one to another chapter's figure, that chapter.
    assert all(re.fullmatch(rf"Fig\. {chapter}\.\d+", text) for href, text in figures if href.startswith("#")), figures
    assert all(re.fullmatch(r"Fig\. \d+\.\d+", text) for _, text in figures), figures


@pytest.mark.parametrize("opened", CHAPTER_PAGES + EXERCISE_PAGES, ids=ids(CHAPTER_PAGES + EXERCISE_PAGES), indirect=True)
def test_code_fits_the_page_at_1280_px(opened):
    """No code cell hides the end of a line behind a horizontal scrollbar on a desktop screen."""
    overflowing = opened.evaluate(
        """Array.from(document.querySelectorAll('div.cell_input pre, div.highlight pre'))
             .filter(pre => !pre.closest('.cell_output'))
             .flatMap(pre => [pre, pre.parentElement])
             .filter(box => box.scrollWidth > box.clientWidth + 1)
             .map(box => box.innerText.split('\\n').reduce((a, b) => (b.length > a.length ? b : a), ''))"""
    )
    assert overflowing == [], f"{len(overflowing)} code blocks scroll sideways, e.g. the line {overflowing[:1]}"


@pytest.mark.parametrize("opened", EXERCISE_PAGES, ids=ids(EXERCISE_PAGES), indirect=True)
def test_exercise_pages_do_not_show_the_colab_setup_cell(opened):
    """The student's notebook starts with a cell that fetches the course on Colab; the website's page does not show it."""
    code = "\n".join(opened.locator("div.cell_input").all_inner_texts())
    assert code, "the exercise page shows no code at all"
    assert 'find_spec("course")' not in code and "git" not in code.split("\n")[0], "the Colab setup cell is on the page"


def test_date_heatmaps_are_shown_near_their_drawn_size(server, page):
    """Tick labels drawn at 10 points stay readable only if the browser does not shrink the figure much."""
    page.goto(url_of(server, SITE / "chapters" / "ch02_bahdanau_attention.html"), wait_until="load")
    image = page.locator("#fig-ch02-date-heatmaps img")
    natural, shown = image.evaluate("img => [img.naturalWidth, img.getBoundingClientRect().width]")
    assert shown / natural >= 0.75, f"drawn {natural} px wide, shown at {shown:.0f} px: the labels shrink to {shown / natural:.0%}"


# Accessibility and layout (issue 25 item 7): an axe-core audit of every page, no text cut off at the
# right edge at a desktop and at a phone width, tables that render as tables, and the chapters' page
# contents that list their exercises.

# axe-core's impacts are minor, moderate, serious and critical; the site has none of the last two.
AXE_FAILING_IMPACTS = {"serious", "critical"}


def open_page(page, server: str, html: Path):
    """Go to the page (to where it redirects, for the root page) and wait until MathJax has typeset it."""
    page.goto(url_of(server, html), wait_until="load")
    redirect = parsed(html).redirect
    if redirect:
        page.wait_for_url(url_of(server, html.parent / redirect))
    page.wait_for_load_state("networkidle")
    if page.locator(".math").count():
        page.wait_for_selector("mjx-container", state="attached", timeout=20_000)
    settle(page)


def settle(page):
    """Let the theme's transitions run to their end (a sidebar that slides away at a phone's width, colours
    that fade to the other theme): half-way, a colour or a position is neither the old one nor the new."""
    page.evaluate(
        """() => new Promise(frame => requestAnimationFrame(() => requestAnimationFrame(frame))).then(() => Promise.all(
             document.getAnimations().filter(a => a.effect && a.effect.getComputedTiming().endTime !== Infinity)
               .map(a => a.finished.catch(() => null))))"""
    )


def axe_problems(page, options: dict | None = None) -> list[str]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page, options={"resultTypes": ["violations"], **(options or {})})
    return [
        f"{violation['id']} ({violation['impact']}, {len(violation['nodes'])} elements: {violation['help']}), e.g. "
        + "; ".join(" ".join(map(str, node["target"])) for node in violation["nodes"][:3])
        for violation in results.response["violations"]
        if violation["impact"] in AXE_FAILING_IMPACTS
    ]




# Each piece of text (and each typeset formula) whose right end lies beyond the visible part of a box
# that clips it: a box that scrolls sideways lets the reader reach it, one with overflow hidden or clip
# cuts it off, and text past the window's right edge is cut off on a phone. With `desktop`, a cell's
# printed output or an inline formula that needs a sideways scrollbar is reported too: at desktop
# widths output lines wrap (_static/course.css) and a formula in a sentence fits its line, so no
# part of them hides behind a scrollbar (a displayed formula wider than the column may scroll).
CUT_TEXT_JS = """desktop => {
  const page = document.documentElement;
  const describe = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\\s+/).slice(0, 3).join(".") : "");
  const visibleRight = (box) => box.getBoundingClientRect().left + box.clientLeft + box.clientWidth;
  const problems = new Set();
  const check = (node, right, what) => {
    for (let box = node.parentElement; box && box !== document.body && box !== page; box = box.parentElement) {
      const overflow = getComputedStyle(box).overflowX;
      if (overflow === "visible") continue;
      const limit = visibleRight(box);
      if (right <= limit + 1) continue;
      // Nothing overflows the box: what lies past its edge is white space that hangs at a line's end.
      if (box.scrollWidth <= box.clientWidth + 1) { right = limit; continue; }
      if (overflow === "auto" || overflow === "scroll") {
        if (desktop && (box.matches("span.math") || (box.closest(".cell_output") && !box.closest("table, .pst-scrollable-table-container")))) {
          return `${what} needs the sideways scrollbar of ${describe(box)} to be read`;
        }
        right = limit;  // reachable by scrolling: the box itself must then be visible
        continue;
      }
      return `${what} is cut off by ${describe(box)} (overflow-x: ${overflow})`;
    }
    return right > page.clientWidth + 1 && page.scrollWidth > page.clientWidth + 1 ? `${what} runs past the window's right edge` : null;
  };
  // Only a box whose content overflows it (or a page wider than the window) can hide text: the text in
  // those boxes is measured, not all of the page's.
  const overflowing = page.scrollWidth > page.clientWidth + 1 ? [document.body] : Array.from(document.body.querySelectorAll("*"))
    .filter((box) => box.scrollWidth > box.clientWidth + 1 && getComputedStyle(box).overflowX !== "visible");
  const roots = overflowing.filter((box) => !overflowing.some((outer) => outer !== box && outer.contains(box)));
  const range = document.createRange();
  for (const root of roots) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let text = walker.nextNode(); text; text = walker.nextNode()) {
      const parent = text.parentElement;
      // MathJax's assistive MathML is a 1-pixel box for screen readers; the typeset formula is checked below.
      if (!text.data.trim() || !parent || parent.closest("script, style, noscript, template, mjx-assistive-mml")) continue;
      if (!parent.checkVisibility({visibilityProperty: true})) continue;
      range.selectNodeContents(text);
      const rects = Array.from(range.getClientRects()).filter((r) => r.width > 0 && r.height > 0);
      if (!rects.length) continue;
      const block = parent.closest("p, li, td, th, pre, dt, dd, h1, h2, h3, h4, h5, h6, figcaption, caption, div") || parent;
      const what = `"${text.data.trim().slice(0, 60)}" (in ${describe(parent)}, in "${(block.innerText || "").trim().split("\\n")[0].slice(0, 60)}")`;
      const problem = check(text, Math.max(...rects.map((r) => r.right)), what);
      if (problem) problems.add(problem);
    }
  }
  for (const formula of document.querySelectorAll("mjx-container")) {
    if (!formula.checkVisibility({visibilityProperty: true})) continue;
    const inline = formula.closest("span.math");
    if (desktop && inline && inline.scrollWidth > inline.clientWidth + 1 && ["auto", "scroll"].includes(getComputedStyle(inline).overflowX)) {
      problems.add(`the formula "${formula.textContent.slice(0, 40)}" in a sentence has a sideways scrollbar`);
      continue;
    }
    const problem = check(formula, formula.getBoundingClientRect().right, `the formula "${formula.textContent.slice(0, 40)}"`);
    if (problem) problems.add(problem);
  }
  return Array.from(problems);
}"""


def cut_text_problems(page, width: int) -> str:
    problems = page.evaluate(CUT_TEXT_JS, width >= 1280)
    return f"at {width} px, {len(problems)} piece(s) of text cut off or hidden behind a scrollbar:\n" + "\n".join(problems[:20]) if problems else ""


@pytest.mark.parametrize("opened", PAGES, ids=ids(PAGES), indirect=True)
def test_no_text_overflows_cut_off_at_desktop_width(opened):
    """Text is wrapped, or in a box that scrolls sideways (at 1280 px, not even that for printed output or a formula
    in a sentence); never cut off."""
    assert cut_text_problems(opened, 1280) == ""


@pytest.mark.parametrize("html", PAGES, ids=ids(PAGES))
def test_no_text_overflows_cut_off_at_phone_width(server, page, html):
    """The same at a phone's width, on a page opened at that width (the theme lays out a phone's page as it loads)."""
    page.set_viewport_size({"width": 390, "height": 900})
    open_page(page, server, html)
    assert cut_text_problems(page, 390) == ""


# A markdown table that reached the page as text: its header's rule, "| --- | :-: |" (whose "--" the
# typographer may have turned into dashes), in a paragraph or an output rather than in code.
MARKDOWN_TABLE_RULE = re.compile(r"\|(?:[ \t]*:?[-\u2013\u2014]+:?[ \t]*\|){2,}")


@pytest.mark.parametrize("opened", CHAPTER_PAGES + EXERCISE_PAGES, ids=ids(CHAPTER_PAGES + EXERCISE_PAGES), indirect=True)
def test_tables_render_as_tables(opened):
    """A table a cell prints is one box, not one box per row; a table it displays is one <table> whose rows all
    have the same number of columns; no markdown table is left as text on the page."""
    page = opened
    split = page.eval_on_selector_all(
        "div.cell_output > div.output.stream + div.output.stream, div.cell_output > div.output.stderr + div.output.stderr",
        "boxes => boxes.map(box => box.innerText.split('\\n')[0].slice(0, 80))",
    )
    assert split == [], f"printed output split into separate boxes (a glue call between prints?), e.g. at {split[:3]}"
    ragged = page.eval_on_selector_all(
        "article table",
        """tables => tables.filter(table => {
             const widths = Array.from(table.rows).map(row => Array.from(row.cells).reduce((n, cell) => n + cell.colSpan, 0));
             return widths.length === 0 || new Set(widths).size > 1;
           }).map(table => table.innerText.slice(0, 80))""",
    )
    assert ragged == [], f"tables without rows or with rows of different widths: {ragged}"
    texts = page.eval_on_selector_all(
        "article p, article li, article td, article dd, div.cell_output",
        "boxes => boxes.filter(box => !box.closest('.cell_input')).map(box => box.innerText)",
    )
    shown = [text for text in texts if MARKDOWN_TABLE_RULE.search(text)]
    assert shown == [], f"a markdown table shown as text, not as a table: {shown[0][:300]!r}" if shown else ""


@pytest.mark.parametrize("opened", CHAPTER_PAGES, ids=ids(CHAPTER_PAGES), indirect=True)
def test_chapter_page_contents_list_the_exercises(request, server, opened):
    """The right-hand "Contents" of a chapter with exercises ends with its Exercises section, which links to them."""
    page, html = opened, request.node.callspec.params["opened"]
    exercises = SITE / "exercises" / html.stem / f"{html.stem}.html"
    if not exercises.exists():
        pytest.skip(f"{html.stem} has no exercises page")
    entries = page.eval_on_selector_all("#pst-page-toc-nav a.nav-link", "links => links.map(a => [a.innerText.trim(), a.getAttribute('href')])")
    assert entries and entries[-1][0] == "Exercises", f"the page contents are {[text for text, _ in entries]}"
    section = page.locator(f"section{entries[-1][1]}")
    assert section.locator("h2").inner_text().strip().startswith("Exercises")
    links = section.locator("a").evaluate_all("links => links.map(a => a.href)")
    assert url_of(server, exercises) in links, f"the Exercises section does not link to {exercises.relative_to(SITE)}: {links}"


@pytest.mark.parametrize("opened", PAGES, ids=ids(PAGES), indirect=True)
def test_axe_finds_no_serious_or_critical_violations(opened):
    """axe-core (bundled with axe-playwright-python, nothing downloaded) on the page in the light theme, then
    its colour contrast in the dark theme (the other rules do not depend on the theme). The last test of a page's
    shared opening (it changes the theme, and puts it back)."""
    problems = [f"light theme: {problem}" for problem in axe_problems(opened)]
    opened.evaluate("document.documentElement.dataset.theme = 'dark'")
    settle(opened)
    try:
        problems += [f"dark theme: {problem}" for problem in axe_problems(opened, {"runOnly": ["color-contrast"]})]
    finally:
        opened.evaluate("document.documentElement.dataset.theme = 'light'")
        settle(opened)
    assert problems == [], "\n".join(problems)
