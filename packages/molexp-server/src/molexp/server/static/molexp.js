// molexp serve: live updates for server-rendered pages. No framework, no build step.
//
// * An element with data-poll-url is refreshed from that URL (an HTML fragment rendered by the
//   server, every value escaped there) every data-poll-ms milliseconds while the fragment carries
//   <div class="live-marker" data-live="1"> (runs in progress), and every 10 s or so otherwise.
//   Ticked run checkboxes survive a refresh. Nothing is fetched while the tab is hidden.
// * A <pre class="log" data-tail-url data-offset> follows its log: it asks for the complete lines
//   written after data-offset and appends them as text (every second while its run is live).
// * A #logs section with data-logs-url adds a pane for each log that appears while a run runs.
"use strict";

(function () {
  const FETCH = { credentials: "same-origin", headers: { "X-Requested-With": "molexp" } };
  const MAX_LOG_CHARS = 2000000;

  function isLive(root) {
    const marker = root.querySelector(".live-marker");
    return marker !== null && marker.dataset.live === "1";
  }

  function checkedRuns(root) {
    return new Set(
      Array.from(root.querySelectorAll("input[name=run]:checked")).map((el) => el.value)
    );
  }

  function restoreChecked(root, values) {
    root.querySelectorAll("input[name=run]").forEach((el) => {
      if (values.has(el.value)) el.checked = true;
    });
  }

  function openDetails(root) {
    return Array.from(root.querySelectorAll("details")).map((d) => d.open);
  }

  function restoreDetails(root, states) {
    root.querySelectorAll("details").forEach((d, i) => {
      if (states[i]) d.open = true;
    });
  }

  function poll(el) {
    const url = el.dataset.pollUrl;
    const every = parseInt(el.dataset.pollMs || "3000", 10);
    let last = el.innerHTML;
    async function tick() {
      if (!document.hidden) {
        try {
          const response = await fetch(url, FETCH);
          if (response.ok) {
            const html = await response.text();
            if (html !== last) {
              const keep = checkedRuns(el);
              const opened = openDetails(el);
              el.innerHTML = html;
              restoreChecked(el, keep);
              restoreDetails(el, opened);
              last = el.innerHTML;
              el.dispatchEvent(new CustomEvent("molexp:updated", { bubbles: true }));
            }
          }
        } catch (err) {
          // the server is restarting or gone: try again later
        }
      }
      window.setTimeout(tick, isLive(el) ? every : Math.max(every * 5, 10000));
    }
    window.setTimeout(tick, isLive(el) ? every : Math.max(every * 5, 10000));
  }

  function followLog(pre, isRunLive) {
    const url = pre.dataset.tailUrl;
    let quietTicks = 0;
    async function tick() {
      let grew = false;
      if (!document.hidden) {
        try {
          const offset = pre.dataset.offset || "0";
          const response = await fetch(`${url}?offset=${encodeURIComponent(offset)}`, FETCH);
          if (response.ok) {
            const piece = await response.json();
            const atBottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 8;
            if (piece.reset) pre.textContent = "";
            if (piece.text) {
              pre.textContent += piece.text;
              if (pre.textContent.length > MAX_LOG_CHARS) {
                pre.textContent = pre.textContent.slice(-MAX_LOG_CHARS);
              }
              grew = true;
              if (atBottom) pre.scrollTop = pre.scrollHeight;
            }
            pre.dataset.offset = String(piece.offset);
            const size = pre.closest(".log-pane")?.querySelector(".log-size");
            if (size) size.textContent = `${piece.size} B`;
          }
        } catch (err) {
          // try again on the next tick
        }
      }
      quietTicks = grew ? 0 : quietTicks + 1;
      // Every second while the run is live or the log grows; every 5 s once it has gone quiet.
      window.setTimeout(tick, isRunLive() || quietTicks < 5 ? 1000 : 5000);
    }
    window.setTimeout(tick, 1000);
  }

  function makePane(asset) {
    const pane = document.createElement("div");
    pane.className = "log-pane";
    pane.dataset.asset = asset.id;
    const title = document.createElement("h3");
    title.textContent = `${asset.name} `;
    const size = document.createElement("span");
    size.className = "muted log-size";
    title.appendChild(size);
    const open = document.createElement("a");
    open.className = "small";
    open.href = `/assets/${encodeURIComponent(asset.id)}`;
    open.textContent = " open";
    title.appendChild(open);
    const pre = document.createElement("pre");
    pre.className = "log";
    pre.dataset.tailUrl = `/api/assets/${encodeURIComponent(asset.id)}/tail`;
    pre.dataset.offset = "0";
    pane.appendChild(title);
    pane.appendChild(pre);
    return pane;
  }

  function watchLogs(section) {
    const live = () => {
      const runLive = document.getElementById("run-live");
      return runLive ? isLive(runLive) : section.dataset.live === "1";
    };
    section.querySelectorAll("pre.log[data-tail-url]").forEach((pre) => followLog(pre, live));
    async function tick() {
      if (!document.hidden) {
        try {
          const response = await fetch(section.dataset.logsUrl, FETCH);
          if (response.ok) {
            const logs = await response.json();
            for (const asset of logs) {
              const selector = `.log-pane[data-asset="${CSS.escape(asset.id)}"]`;
              if (section.querySelector(selector)) continue;
              section.querySelector(".no-logs")?.remove();
              const pane = makePane(asset);
              section.appendChild(pane);
              followLog(pane.querySelector("pre"), live);
            }
          }
        } catch (err) {
          // try again on the next tick
        }
      }
      window.setTimeout(tick, live() ? 2000 : 10000);
    }
    window.setTimeout(tick, 1000);
  }

  // The cancel form sits outside the refreshed part of a run page; it goes once the run is over.
  document.addEventListener("molexp:updated", (event) => {
    if (event.target.id === "run-live" && !isLive(event.target)) {
      document.getElementById("cancel")?.remove();
    }
  });

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-poll-url]").forEach(poll);
    const logs = document.getElementById("logs");
    if (logs && logs.dataset.logsUrl) watchLogs(logs);
    else {
      const always = () => true;
      document.querySelectorAll("pre.log[data-tail-url]").forEach((pre) => followLog(pre, always));
    }
  });
})();
