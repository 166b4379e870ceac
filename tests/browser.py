"""Open a DVC plots page in headless Chromium with networking off and report, per plot, whether
it drew.

    from browser import render_plots_page
    report = render_plots_page("dvc_plots/index.html")
    assert report.all_drew, report.summary()

Chromium (Debian's `chromium`; another binary through $CHROMIUM) is driven over the DevTools
protocol on a pipe (--remote-debugging-pipe: no port, no extra packages). Networking is off in
three independent ways:
  1. every request the page makes that is not file:, data:, blob: or about: is failed by the
     Fetch domain before it leaves the browser (and its URL recorded in `PageReport.blocked`);
  2. DevTools network emulation is set to offline;
  3. the browser runs with a proxy on a dead loopback port for every host, loopback included,
     and a host resolver that resolves no name.
tests/test_plots_offline.py shows that a script on a live HTTP server on this machine loads
with networking on and is neither fetched nor run with it off.

A vega view is a container whose inline script calls vegaEmbed (what dvc-render writes). It drew
when vegaEmbed was called for it and resolved, its scenegraph has data-mark items (not just
axes), and its canvas has painted pixels (or its svg has shapes). An <img> drew when it loaded
with naturalWidth > 0.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

HEADLESS_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
]
NO_NETWORK_FLAGS = [
    "--proxy-server=http://127.0.0.1:9",  # the discard port: nothing listens there
    "--proxy-bypass-list=<-loopback>",  # loopback goes through that proxy too
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:")

# Runs in the page before its own scripts: wraps window.vegaEmbed when the vega-embed library
# defines it, to learn which views were embedded, whether that failed, and their vega View.
HOOK_JS = r"""
(() => {
  const calls = [];
  let real;
  function wrapped(el, spec, opts) {
    const call = {  // vega-embed empties its container, the calling script included
      element: typeof el === 'string' ? document.querySelector(el) : el,
      error: null, view: null, done: false,
    };
    calls.push(call);
    let p;
    try {
      p = real(el, spec, opts);
    } catch (e) {
      call.error = String(e); call.done = true; throw e;
    }
    call.promise = Promise.resolve(p).then(
      r => { call.view = r && r.view; call.done = true; },
      e => { call.error = String((e && e.message) || e); call.done = true; });
    return p;
  }
  Object.defineProperty(window, '__plotCheck', {value: {calls}});
  Object.defineProperty(window, 'vegaEmbed', {
    configurable: true, enumerable: true,
    get() { return real === undefined ? undefined : wrapped; },
    set(v) { real = v; if (v) { for (const k of Object.keys(v)) { wrapped[k] = v[k]; } } },
  });
})();
"""

# Evaluated after the load event: waits for every embed, then describes every plot.
COLLECT_JS = r"""
(async () => {
  const calls = window.__plotCheck.calls;
  const deadline = Date.now() + %(timeout_ms)d;
  while (calls.some(c => !c.done) && Date.now() < deadline) {
    await Promise.race([Promise.allSettled(calls.map(c => c.promise)),
                        new Promise(r => setTimeout(r, 100))]);
  }
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));

  const GUIDE = /^(axis|legend|title)/;  // the root group's role is 'frame'
  function dataItems(mark) {  // items of data marks below a scenegraph mark, guides excluded
    if (!mark || !mark.items || GUIDE.test(mark.role || '')) return 0;
    if (mark.marktype === 'group') {
      let n = 0;
      for (const g of mark.items) for (const child of g.items || []) n += dataItems(child);
      return n;
    }
    return mark.role === 'mark' ? mark.items.length : 0;
  }
  function painted(canvas) {  // pixels that differ from the top-left (background) pixel
    const w = canvas.width, h = canvas.height;
    if (!w || !h) return 0;
    const px = canvas.getContext('2d').getImageData(0, 0, w, h).data;
    let n = 0;
    for (let i = 0; i < px.length; i += 4) {
      if (px[i] !== px[0] || px[i + 1] !== px[1] || px[i + 2] !== px[2] || px[i + 3] !== px[3]) n++;
    }
    return n;
  }
  const out = [];
  // the views: containers vegaEmbed was called for, and those whose script calling vegaEmbed is
  // still there (never embedded), in page order
  const containers = calls.map(c => c.element).filter(el => el);
  for (const s of document.querySelectorAll('script')) {
    if (s.src || !/\bvegaEmbed\s*\(/.test(s.textContent)) continue;
    const el = s.parentElement;
    if (el && el !== document.head && el !== document.body && !containers.includes(el)) {
      containers.push(el);
    }
  }
  const FOLLOWS = Node.DOCUMENT_POSITION_FOLLOWING;
  containers.sort((a, b) => (a.compareDocumentPosition(b) & FOLLOWS ? -1 : 1));
  for (const el of containers) {
    const id = el.id || '';
    const call = calls.find(c => c.element === el);
    const canvas = el.querySelector('canvas');
    const svg = el.querySelector('svg.marks') || el.querySelector('svg');
    const r = {kind: 'vega', id, embedded: !!call, error: call ? call.error : null,
               renderer: canvas ? 'canvas' : (svg ? 'svg' : null), width: 0, height: 0,
               painted: 0, data_items: 0};
    if (canvas) { r.width = canvas.width; r.height = canvas.height; r.painted = painted(canvas); }
    else if (svg) {
      const box = svg.getBoundingClientRect();
      r.width = Math.round(box.width); r.height = Math.round(box.height);
      r.painted = svg.querySelectorAll('path, rect, line, circle, text, image').length;
    }
    if (call && call.view) {
      try {
        r.data_items = dataItems(call.view.scenegraph().root);
      } catch (e) {
        r.error = String(e);
      }
    }
    out.push(r);
  }
  for (const img of document.querySelectorAll('img')) {
    const box = img.closest('[id]');
    out.push({kind: 'image', id: (box && box.id) || '', src: img.getAttribute('src') || '',
              complete: img.complete, width: img.naturalWidth, height: img.naturalHeight});
  }
  return JSON.stringify(out);
})()
"""


class ChromiumMissing(RuntimeError):
    pass


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).is_file():
        raise ChromiumMissing(
            f"Chromium not found ({path}): the plots tests open pages in headless Chromium. "
            "Install the Debian package `chromium` (./test.sh does, through "
            "scripts/setup-system.sh and scripts/debian-packages.txt) or set $CHROMIUM."
        )
    return path


@dataclass
class Plot:
    kind: str  # "vega" | "image"
    id: str
    drew: bool
    detail: dict

    def __str__(self) -> str:
        return f"{'drew' if self.drew else 'BLANK'}  {self.kind} #{self.id}  {self.detail}"


@dataclass
class PageReport:
    url: str
    plots: list[Plot]
    blocked: list[str] = field(default_factory=list)  # requests failed because networking is off
    errors: list[str] = field(default_factory=list)  # uncaught exceptions and console errors

    @property
    def vega(self) -> list[Plot]:
        return [p for p in self.plots if p.kind == "vega"]

    @property
    def images(self) -> list[Plot]:
        return [p for p in self.plots if p.kind == "image"]

    @property
    def all_drew(self) -> bool:
        return bool(self.plots) and all(p.drew for p in self.plots)

    def summary(self) -> str:
        lines = [f"{self.url}: {sum(p.drew for p in self.plots)}/{len(self.plots)} plots drew"]
        lines += [f"  {p}" for p in self.plots]
        lines += [f"  blocked request: {u}" for u in self.blocked]
        lines += [f"  page error: {e}" for e in self.errors]
        return "\n".join(lines)


def _vega_drew(r: dict) -> bool:
    return (
        r["embedded"]
        and not r["error"]
        and r["width"] > 0
        and r["height"] > 0
        and r["painted"] > 0
        and r["data_items"] > 0
    )


class Chromium:
    """A headless Chromium driven over --remote-debugging-pipe. Use as a context manager."""

    def __init__(self, offline: bool = True, executable: str | None = None):
        self.offline = offline
        exe = executable or chromium_path()
        self._profile = tempfile.TemporaryDirectory(prefix="agnews-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def as_fds_3_and_4():  # the pipe transport reads commands on fd 3, writes on fd 4
            r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
            w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        args = [
            exe,
            *HEADLESS_FLAGS,
            *(NO_NETWORK_FLAGS if offline else []),
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile.name}",
            "about:blank",
        ]
        self._proc = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            pass_fds=(3, 4),
            preexec_fn=as_fds_3_and_4,
            start_new_session=True,  # its helper processes share its group: closed together
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._stderr: list[bytes] = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        self._lock = threading.Lock()
        self._next_id = 0
        self._replies: dict[int, queue.Queue] = {}
        self._events: queue.Queue = queue.Queue()
        self._listeners: dict[str, list] = {}  # sessionId -> [callback(method, params)]
        threading.Thread(target=self._read_loop, daemon=True).start()
        try:
            self.version = self.send("Browser.getVersion", timeout=30)["product"]
        except Exception:
            self.close()
            raise

    # -- transport ------------------------------------------------------------------------
    def _drain_stderr(self) -> None:
        for line in self._proc.stderr:
            self._stderr.append(line)

    def _read_loop(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_browser, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                for q in list(self._replies.values()):
                    q.put({"error": {"message": "browser closed the pipe"}})
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    q = self._replies.get(msg["id"])
                    if q is not None:
                        q.put(msg)
                else:
                    for listener in self._listeners.get(msg.get("sessionId", ""), []):
                        listener(msg["method"], msg.get("params", {}))

    def _post(self, method: str, params: dict | None, session: str | None) -> int:
        with self._lock:
            self._next_id += 1
            msg_id = self._next_id
            self._replies[msg_id] = queue.Queue()
            msg = {"id": msg_id, "method": method, "params": params or {}}
            if session:
                msg["sessionId"] = session
            os.write(self._to_browser, json.dumps(msg).encode() + b"\0")
        return msg_id

    def send(
        self, method: str, params: dict | None = None, session: str | None = None, timeout=30.0
    ) -> dict:
        msg_id = self._post(method, params, session)
        try:
            reply = self._replies[msg_id].get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"no reply to {method} within {timeout} s") from None
        finally:
            self._replies.pop(msg_id, None)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def send_nowait(self, method: str, params: dict, session: str) -> None:
        msg_id = self._post(method, params, session)
        self._replies.pop(msg_id, None)

    def close(self) -> None:
        if self._proc.poll() is None:
            try:
                self._post("Browser.close", None, None)
                self._proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGKILL)  # the group of the browser we started
            self._proc.wait(timeout=10)
        for fd in (self._to_browser, self._from_browser):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._profile.cleanup()

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- pages ----------------------------------------------------------------------------
    def render(
        self,
        html_path: str | os.PathLike,
        timeout: float = 60.0,
        screenshot: str | os.PathLike | None = None,
    ) -> PageReport:
        """Load a local HTML file and report whether each of its plots drew (and, with
        `screenshot`, save a PNG of the whole page there)."""
        url = Path(html_path).resolve().as_uri()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        blocked: list[str] = []
        errors: list[str] = []
        loaded: set[str] = set()  # loaderIds of documents that fired their load event
        load_seen = threading.Event()

        def on_event(method: str, params: dict) -> None:
            if method == "Fetch.requestPaused":
                req_url = params["request"]["url"]
                if self.offline and not req_url.startswith(LOCAL_SCHEMES):
                    blocked.append(req_url)
                    self.send_nowait(
                        "Fetch.failRequest",
                        {"requestId": params["requestId"], "errorReason": "InternetDisconnected"},
                        session,
                    )
                else:
                    self.send_nowait(
                        "Fetch.continueRequest", {"requestId": params["requestId"]}, session
                    )
            elif method == "Page.lifecycleEvent" and params["name"] == "load":
                loaded.add(params["loaderId"])
                load_seen.set()
            elif method == "Runtime.exceptionThrown":
                d = params["exceptionDetails"]
                errors.append((d.get("exception") or {}).get("description") or d.get("text", ""))
            elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
                errors.append(
                    " ".join(str(a.get("value", a.get("description"))) for a in params["args"])
                )
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                errors.append(params["entry"]["text"])

        self._listeners[session] = [on_event]
        try:
            # every request stops here first; on_event fails the non-local ones
            self.send("Fetch.enable", {"patterns": [{"urlPattern": "*"}]}, session)
            if self.offline:
                self.send("Network.enable", {}, session)
                self.send(
                    "Network.emulateNetworkConditions",
                    {"offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0},
                    session,
                )
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable", {}, session)
            self.send("Page.setLifecycleEventsEnabled", {"enabled": True}, session)
            self.send("Page.addScriptToEvaluateOnNewDocument", {"source": HOOK_JS}, session)
            start = time.monotonic()
            nav = self.send("Page.navigate", {"url": url}, session)
            if nav.get("errorText"):
                raise RuntimeError(f"could not open {url}: {nav['errorText']}")
            # this navigation's load event (not the initial about:blank's)
            while nav["loaderId"] not in loaded:
                load_seen.clear()
                if nav["loaderId"] in loaded:
                    break
                if not load_seen.wait(max(0.0, timeout - (time.monotonic() - start))):
                    raise TimeoutError(f"{url} did not finish loading within {timeout} s")
            left = max(5.0, timeout - (time.monotonic() - start))
            result = self.send(
                "Runtime.evaluate",
                {
                    "expression": COLLECT_JS % {"timeout_ms": int(left * 1000) - 2000},
                    "awaitPromise": True,
                    "returnByValue": True,
                },
                session,
                timeout=left + 5,
            )
            if "exceptionDetails" in result:
                raise RuntimeError(f"checking {url} failed: {result['exceptionDetails']}")
            raw = json.loads(result["result"]["value"])
            if screenshot is not None:
                size = self.send("Page.getLayoutMetrics", {}, session)["cssContentSize"]
                shot = self.send(
                    "Page.captureScreenshot",
                    {
                        "format": "png",
                        "captureBeyondViewport": True,
                        "clip": {"x": 0, "y": 0, "width": size["width"],
                                 "height": size["height"], "scale": 1},
                    },
                    session,
                    timeout=timeout,
                )  # fmt: skip
                Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
        finally:
            self._listeners.pop(session, None)
            self.send("Target.closeTarget", {"targetId": target})
        plots = []
        for r in raw:
            kind, plot_id = r.pop("kind"), r.pop("id")
            if kind == "vega":
                drew = _vega_drew(r)
            else:
                drew = r["complete"] and r["width"] > 0 and r["height"] > 0
            plots.append(Plot(kind, plot_id, drew, r))
        return PageReport(url, plots, blocked, errors)


def render_plots_page(
    html_path: str | os.PathLike,
    offline: bool = True,
    timeout: float = 60.0,
    screenshot: str | os.PathLike | None = None,
) -> PageReport:
    """Open `html_path` in a fresh headless Chromium (networking off unless offline=False) and
    report per plot whether it drew. See the module docstring."""
    with Chromium(offline=offline) as browser:
        return browser.render(html_path, timeout=timeout, screenshot=screenshot)


if __name__ == "__main__":  # python tests/browser.py PAGE.html [--screenshot OUT.png]
    import argparse

    parser = argparse.ArgumentParser(description="check (and photograph) a plots page offline")
    parser.add_argument("page")
    parser.add_argument("--screenshot", help="save a PNG of the whole page here")
    args = parser.parse_args()
    report = render_plots_page(args.page, screenshot=args.screenshot)
    print(report.summary())
    raise SystemExit(0 if report.all_drew else 1)
