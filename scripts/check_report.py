"""Opens a `kiln report` page in headless Chromium and checks what a person would see: the page
loads with no console errors, and it shows the graph (an SVG node for every drawn op), the pass
log, the profile and the memory chart. Optionally saves a screenshot.

Usage: python3 scripts/check_report.py REPORT.html [--screenshot OUT.png]
Exits 0 when every check holds, 1 with the failures listed, 2 when no Chromium is installed
(`apt-get install chromium`).
"""

import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

BROWSERS = ["chromium", "chromium-browser", "google-chrome"]


def chromium():
    return next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)


def run(browser, args, timeout=120):
    with tempfile.TemporaryDirectory() as profile:
        cmd = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
               f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--screenshot")
    args = ap.parse_args()
    browser = chromium()
    if browser is None:
        print("no Chromium found; install it with `apt-get install chromium`")
        return 2
    url = pathlib.Path(args.report).resolve().as_uri()
    dom = run(browser, ["--dump-dom", url])
    failures = []
    if dom.returncode != 0:
        failures.append(f"chromium exited with {dom.returncode}: {dom.stderr[-2000:]}")
    console = [l for l in dom.stderr.splitlines() if "CONSOLE" in l or "Uncaught" in l]
    errors = [l for l in console if re.search(r"error|Uncaught", l, re.I)]
    if errors:
        failures.append("console errors:\n  " + "\n  ".join(errors))
    html = dom.stdout
    for what, pattern in [
        ("the graph after optimization", r'<svg[^>]*class="graph"'),
        ("graph nodes", r'<g class="node">'),
        ("the pass log", r"<h2>Passes</h2>"),
        ("the profile", r"<h2>Profile</h2>"),
        ("the memory chart", r"<h2>Memory</h2>\s*<p>.*?</p>\s*<svg"),
    ]:
        if not re.search(pattern, html, re.S):
            failures.append(f"the page does not show {what} ({pattern})")
    nodes = len(re.findall(r'<g class="node">', html))
    if args.screenshot:
        shot = run(browser, [f"--screenshot={pathlib.Path(args.screenshot).resolve()}", "--window-size=1280,2200", url])
        if shot.returncode != 0:
            failures.append(f"screenshot failed: {shot.stderr[-2000:]}")
    if failures:
        print("\n".join(failures))
        return 1
    print(f"ok: {args.report} loads in {pathlib.Path(browser).name} with no console errors; {nodes} graph nodes drawn")
    return 0


if __name__ == "__main__":
    sys.exit(main())
