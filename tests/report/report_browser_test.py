"""Opens a report.html in headless Debian chromium and checks what a reviewer relies on.

Driven by Python playwright against the system browser (executable_path; playwright never
downloads one): the charts and the trajectory browser render with no console errors or network
requests, every compared run is in the summary, the config differences and the charts, filters
work, an episode opens as a transcript. Saves screenshots and prints the time-to-interactive as
JSON on the last line.

    report_browser_test.py REPORT.html OUT_DIR [--max-open-ms N] [--chromium PATH_OR_NAME]
    report_browser_test.py --check-chromium [--chromium PATH_OR_NAME]

The chromium comes from --chromium, else $CLINRL_CHROMIUM, else `chromium` on PATH.
"""

import argparse
import json
import math
import os
import shutil
import sys
import time

SETUP_HINT = "launch/setup installs it"


class CheckFailed(Exception):
    pass


def fail(message):
    raise CheckFailed(message)


def check(cond, message):
    if not cond:
        fail(message)
    print("ok: " + message, flush=True)


def resolve_chromium(given):
    """Returns the chromium executable's path, or fails naming what is missing."""
    name = given or os.environ.get("CLINRL_CHROMIUM") or "chromium"
    # CMake passes the bare name when find_program found nothing at configure time.
    path = name if os.sep in name else shutil.which(name)
    if not path or not os.path.isfile(path) or not os.access(path, os.X_OK):
        fail(f"chromium is missing (looked for {name!r}; set CLINRL_CHROMIUM or pass "
             f"--chromium): {SETUP_HINT} (Debian package `chromium`)")
    return path


def import_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        fail(f"python playwright is missing from {sys.executable} ({e}): {SETUP_HINT} "
             "(launch/requirements.txt)")
    return sync_playwright


def js_round(x):
    """Math.round: halves go up, unlike Python's round."""
    return math.floor(x + 0.5)


def parse_number(text):
    try:
        return float(text)
    except ValueError:
        return math.nan


def check_compare_view(page, runs):
    """A report of several runs must show each of them side by side."""
    names = [r["name"] for r in runs]
    title = page.text_content("header h1") or ""
    check(" vs ".join(names) in title, f"title compares {' vs '.join(names)}")
    rows = page.eval_on_selector_all(
        "#runs-table tr", "(rs) => rs.slice(1).map((r) => r.cells[0].textContent)")
    check(rows == names, f"summary table has one row per run: {rows}")
    differing = page.eval_on_selector_all("#config-diff tr",
                                          "(rs) => rs.slice(1).map((r) => r.cells[0].textContent)")
    check(len(differing) > 0, f"config differences listed: {', '.join(differing)}")
    offered = page.eval_on_selector_all(
        "#f-run option", "(o) => o.filter((x) => x.value).map((x) => x.textContent)")
    check(offered == names, f"run filter offers {offered}")
    # Each run's line colour (its swatch in the summary) must be painted on some chart: the
    # compared runs are drawn together, not only listed.
    found = page.evaluate("""() => {
      const swatches = Array.from(
          document.querySelectorAll('#runs-table tr td:first-child .swatch'));
      const colours = swatches.map((s) => getComputedStyle(s).backgroundColor
                                              .match(/\\d+/g).slice(0, 3).map(Number));
      const found = colours.map(() => 0);
      for (const c of document.querySelectorAll('.chart canvas')) {
        if (!c.width || !c.height) continue;
        const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        for (let i = 0; i < px.length; i += 4) {
          if (px[i + 3] < 250) continue;
          colours.forEach((rgb, k) => {
            if (Math.abs(px[i] - rgb[0]) + Math.abs(px[i + 1] - rgb[1]) +
                    Math.abs(px[i + 2] - rgb[2]) < 24)
              found[k]++;
          });
        }
      }
      return found;
    }""")
    check(len(found) == len(names) and all(n > 20 for n in found),
          f"every compared run is drawn on the charts (pixels in each run's colour: {found})")


def check_step_axis(page):
    """A run of several stages opens with its last stage on its own step axis (steps from 1,
    the evaluation before its first step at 0); the whole run is one choice away."""
    info = page.evaluate("""() => {
      const m = JSON.parse(document.getElementById('clinrl-data').textContent)
                    .runs[0].metrics;
      return {stages: m.stages, rows: m.stage, steps: m.step,
              axis: document.getElementById('step-axis').value};
    }""")
    if len(info["stages"]) < 2:
        return
    last = info["stages"][-1]
    check(info["axis"] == last, f"charts open on the last stage's axis ({info['axis']!r})")
    own = sum(1 for s in info["rows"] if info["stages"][s] == last)
    layout = "() => window.clinrlChartLayout()"
    x = page.evaluate(layout)
    check(x and x["x0"] == 0 and x["x1"] == own,
          f"the {last} axis spans its own {own} steps (drawn from {x and x['x0']} to "
          f"{x and x['x1']})")
    page.select_option("#step-axis", "")
    x = page.evaluate(layout)
    check(x and x["x1"] == max(info["steps"]),
          f"the whole-run axis spans all {max(info['steps'])} steps (drawn to {x and x['x1']})")
    page.select_option("#step-axis", last)


def run_checks(page, report, out_dir, max_open_ms, errors, requests):
    start = time.perf_counter()
    page.goto("file://" + report, wait_until="load", timeout=60000)
    page.wait_for_function("() => window.clinrlReady", timeout=60000, polling=10)
    open_ms = round((time.perf_counter() - start) * 1000)
    ready = page.evaluate("() => window.clinrlReady")
    check(not errors, "no console errors while opening: " + " | ".join(errors))
    check(not requests, "no network requests: " + " ".join(requests))

    data_runs = page.evaluate("""() => JSON.parse(
        document.getElementById('clinrl-data').textContent).runs.map((r) => ({
          name: r.name, keys: r.metrics.keys,
          rewards: r.trajectories.columns.reward}))""")

    # Charts: one per metric of every run, the visible ones drawn (non-blank pixels).
    keys = []
    for run in data_runs:
        keys += [k for k in run["keys"] if k not in keys]
    chart_keys = page.eval_on_selector_all(".chart", "(cs) => cs.map((c) => c.dataset.key)")
    for k in keys:
        if k not in chart_keys:
            fail("no chart for metric " + k)
    check(len(chart_keys) >= len(keys), f"{len(chart_keys)} charts for {len(keys)} metrics")
    inked = page.evaluate("""() => {
      const c = document.querySelector('.chart canvas');
      const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < px.length; i += 4)
        if (px[i] > 0) n++;
      return n;
    }""")
    check(inked > 500, f"first chart is drawn ({inked} painted pixels)")
    check_step_axis(page)
    check(page.query_selector("#runs-table tr:nth-child(2)") is not None,
          "summary table has a run row")
    if len(data_runs) > 1:
        check_compare_view(page, data_runs)
    page.screenshot(path=os.path.join(out_dir, "report_top.png"))

    # Trajectory browser: virtualised (few rows in the DOM), filterable.
    total = ready["episodes"]
    check(total > 0, f"{total} episodes indexed")
    dom_rows = page.eval_on_selector_all(".traj-row", "(r) => r.length")
    check(0 < dom_rows <= 80, f"{dom_rows} rows in the DOM for {total} episodes")
    rewards = sorted(r for run in data_runs for r in run["rewards"] if r is not None)
    median = rewards[len(rewards) // 2]
    expected = sum(1 for r in rewards if r >= median)
    filter_start = time.perf_counter()
    page.fill("#f-rmin", repr(median))
    page.wait_for_function(
        "(n) => document.getElementById('traj-count').textContent.startsWith(n + ' of')",
        arg=expected, timeout=10000)
    filter_ms = round((time.perf_counter() - filter_start) * 1000)
    filter_in_page_ms = page.evaluate("() => window.clinrlLastFilterMs")
    check(True, f"reward >= {median} keeps {expected} episodes (filter and list "
          f"{filter_in_page_ms:.1f} ms in the page, {filter_ms} ms seen from the test)")
    shown = [parse_number(t) for t in page.eval_on_selector_all(
        ".traj-row span:nth-child(6)", "(s) => s.map((x) => x.textContent)")]
    # The list shows rewards to 3 decimals.
    floor = js_round((median - 5e-4) * 1000) / 1000
    check(shown and all(r >= floor for r in shown), "every listed reward is >= the minimum")
    page.select_option("#f-sort", "reward-asc")
    page.check("#f-transcript")
    page.wait_for_function("() => document.querySelectorAll('.traj-row').length > 0")
    terms = page.eval_on_selector_all("#f-term option",
                                      "(o) => o.map((x) => x.value).filter((v) => v)")
    check(len(terms) > 0, "termination filter offers " + ", ".join(terms))

    # Open one episode.
    page.click(".traj-row")
    page.wait_for_selector("#chat .msg", timeout=10000)
    messages = page.eval_on_selector_all("#chat .msg", "(m) => m.length")
    check(messages >= 2, f"transcript shows {messages} messages")
    check(page.query_selector("#component-table tr:nth-child(2)") is not None,
          "reward components are listed")
    scrolled = page.evaluate("""() => {
      const list = document.getElementById('traj-list');
      list.scrollTop = list.scrollHeight / 2;
      list.dispatchEvent(new Event('scroll'));
      return document.querySelectorAll('.traj-row').length;
    }""")
    check(0 < scrolled <= 80, f"scrolling keeps the list virtual ({scrolled} rows)")
    check(not errors, "no console errors after interacting: " + " | ".join(errors))

    page.evaluate("() => document.getElementById('trajectories').scrollIntoView()")
    page.wait_for_timeout(300)
    page.screenshot(path=os.path.join(out_dir, "report_trajectories.png"))
    page.evaluate("() => document.getElementById('charts').scrollIntoView()")
    page.wait_for_timeout(300)  # charts scrolled into view draw on the next frames
    page.screenshot(path=os.path.join(out_dir, "report_charts.png"))
    check(not errors, "no console errors at the end: " + " | ".join(errors))

    figures = {
        "open_ms": open_ms,
        "ready_in_page_ms": round(ready["ms"]),
        "filter_ms": round(filter_in_page_ms, 1),
        "charts": ready["charts"],
        "episodes": total,
        "html_mb": round(os.path.getsize(report) / 1e6, 1),
    }
    print(f"report opened and interactive in {open_ms} ms ({figures['html_mb']} MB, "
          f"{total} episodes, {ready['charts']} charts)")
    if open_ms >= max_open_ms:
        fail(f"open took {open_ms} ms, {max_open_ms:g} ms or more")
    print(json.dumps(figures), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("report", nargs="?")
    parser.add_argument("out_dir", nargs="?")
    parser.add_argument("--max-open-ms", type=float, default=math.inf)
    parser.add_argument("--chromium", help="path or name; default $CLINRL_CHROMIUM or chromium")
    parser.add_argument("--check-chromium", action="store_true",
                        help="only check that chromium and playwright are there")
    args = parser.parse_args()
    if not args.check_chromium and not (args.report and args.out_dir):
        parser.error("REPORT.html and OUT_DIR are required")
    try:
        chromium = resolve_chromium(args.chromium)
        sync_playwright = import_playwright()
        if args.check_chromium:
            print(f"ok: chromium {chromium}, playwright in {sys.executable}")
            return 0
        report = os.path.abspath(args.report)
        out_dir = os.path.abspath(args.out_dir)
        if not os.path.isfile(report):
            fail(f"no report at {report}")
        os.makedirs(out_dir, exist_ok=True)
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=chromium, headless=True,
                # Tests run as root in containers: no sandbox, no GPU, small /dev/shm.
                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            errors, requests = [], []
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 1000})
                page.on("console",
                        lambda m: errors.append("console: " + m.text) if m.type == "error" else None)
                page.on("pageerror", lambda e: errors.append("page error: " + e.message))
                page.on("request", lambda r: None if r.url.startswith("file:") else
                        requests.append(r.url))
                run_checks(page, report, out_dir, args.max_open_ms, errors, requests)
            finally:
                browser.close()
    except CheckFailed as e:
        print("FAIL: " + str(e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
