// Live updates: the page's one event stream (htmx-ext-sse), made safe to lose and regain.
//
// - Resume where we left off. htmx-ext-sse reopens a failed stream with a new EventSource
//   on the original URL, which carries no Last-Event-ID (htmx-extensions#184). We rewrite
//   the lastEventId query parameter to the newest event this page has applied.
// - Apply each event once. A replay may repeat what the page already shows: an event whose
//   id is not newer than what was applied is dropped, and so is a fragment to be inserted
//   whose element id is already in the page.
// - Say when the stream is down ("Reconnecting…"), and reload what can't be replayed
//   (`stream-reset`): elements that listen for `lms:stream-reset` reload themselves, else
//   the whole page does.
// - Past the per-user limit of streams (429), keep retrying with htmx-ext-sse's growing
//   delay and say when the next try is: a tab closed elsewhere, or a crashed server's
//   streams forgotten, lets this page back in without a reload.
(function () {
  "use strict";

  var applied = {};       // channel -> newest event id applied
  var latestId = "";      // the composite id to resume from
  var sources = new WeakMap();
  var failures = 0;       // failed connections in a row, as htmx-ext-sse counts them
  var countdown = null;

  function parseId(id) {
    var out = {};
    if (!id || id === "error") return out;
    id.split(",").forEach(function (part) {
      var at = part.lastIndexOf(":");
      if (at > 0) out[decodeURIComponent(part.slice(0, at))] = parseInt(part.slice(at + 1), 10);
    });
    return out;
  }

  function withLastEventId(url) {
    if (!latestId) return url;
    var parsed = new URL(url, window.location.href);
    parsed.searchParams.set("lastEventId", latestId);
    return parsed.pathname + parsed.search;
  }

  function status(text) {
    if (countdown) { clearInterval(countdown); countdown = null; }
    var el = document.getElementById("connection-status");
    if (!el) return;
    el.textContent = text || "";
    el.hidden = !text;
  }

  // Translated texts come from the page: data-reconnecting, data-stopped.
  function message(name) {
    var el = document.getElementById("connection-status");
    return (el && el.dataset[name]) || name;
  }

  function isDuplicate(source, event) {
    var id = event.lastEventId;
    var state = sources.get(source) || {};
    var isNew = id && id !== "error" && id !== state.previous;
    state.previous = id;
    sources.set(source, state);
    if (!isNew) return false; // an event without an id of its own (typing, presence)
    var ids = parseId(id), fresh = false, channel;
    for (channel in ids) {
      if (!(channel in applied) || ids[channel] > applied[channel]) fresh = true;
    }
    if (!fresh) return true;
    for (channel in ids) applied[channel] = Math.max(applied[channel] || 0, ids[channel]);
    latestId = id;
    return false;
  }

  function alreadyShown(target, html) {
    var swap = (target.getAttribute("hx-swap") || "").split(" ")[0];
    if (["beforeend", "afterbegin", "beforebegin", "afterend"].indexOf(swap) < 0) return false;
    var match = /^\s*<[a-zA-Z][^>]*?\sid="([^"]+)"/.exec(html);
    return Boolean(match && document.getElementById(match[1]));
  }

  // htmx-ext-sse retries a failed connection after 0.5 s, then twice as long each time
  // (at most 64 s), until one opens.
  function retryDelay() {
    return 0.5 * Math.min(Math.pow(2, failures - 1), 128);
  }

  function retryingIn(seconds) {
    var left = Math.max(1, Math.ceil(seconds));
    function show() {
      var el = document.getElementById("connection-status");
      if (!el) return;
      el.textContent = left > 0 ? message("tooMany").replace("{seconds}", left) : message("reconnecting");
      el.hidden = false;
    }
    status("");
    show();
    countdown = setInterval(function () {
      left -= 1;
      show();
      if (left <= 0) { clearInterval(countdown); countdown = null; }
    }, 1000);
  }

  // EventSource hides why a connection failed, and htmx-ext-sse retries forever. Ask once:
  // refused (403: signed out, or no longer a member) reloads the page, which then says why;
  // 400 will not get better by retrying, so stop and say so; 429 (too many streams) may,
  // once another page closes: say when the next try is.
  var probing = false;
  function probe(element, url, delay) {
    if (probing || !window.fetch) return;
    probing = true;
    var controller = new AbortController();
    fetch(url, { signal: controller.signal, credentials: "same-origin", headers: { Accept: "text/event-stream" } })
      .then(function (response) {
        controller.abort();
        if (response.status === 403) {
          window.location.reload();
        } else if (response.status === 429) {
          retryingIn(delay);
        } else if (response.status === 400) {
          element.removeAttribute("sse-connect"); // htmx-ext-sse retries only while it is there
          var data = element["htmx-internal-data"];
          if (data && data.sseEventSource) data.sseEventSource.close();
          status(message("stopped"));
        }
      })
      .catch(function () { /* the server is down: keep retrying */ })
      .then(function () { probing = false; });
  }

  function init() {
    if (!window.htmx || !htmx.createEventSource) return;
    var live = document.querySelector("[sse-connect]");
    if (live) {
      var initial = new URL(live.getAttribute("sse-connect"), window.location.href);
      var ids = parseId(initial.searchParams.get("lastEventId"));
      for (var channel in ids) applied[channel] = ids[channel];
      latestId = initial.searchParams.get("lastEventId") || "";
    }

    var create = htmx.createEventSource;
    htmx.createEventSource = function (url) {
      var source = create(withLastEventId(url));
      sources.set(source, {});
      source.addEventListener("stream-reset", function (event) {
        isDuplicate(source, event);
        var listeners = document.querySelectorAll('[hx-trigger*="lms:stream-reset"]');
        if (listeners.length) {
          htmx.trigger(document.body, "lms:stream-reset", JSON.parse(event.data || "{}"));
        } else {
          window.location.reload();
        }
      });
      source.addEventListener("stream-error", function (event) {
        var text = "";
        try { text = JSON.parse(event.data).text; } catch (e) { /* keep the default */ }
        status(message("stopped") + (text ? " " + text : ""));
      });
      return source;
    };

    document.body.addEventListener("htmx:sseBeforeMessage", function (evt) {
      var event = evt.detail;
      var source = event.target;
      if (isDuplicate(source, event) || alreadyShown(evt.target, event.data || "")) {
        evt.preventDefault();
      }
    });
    // The stream's state is on its element too (data-stream), for styles and tests.
    document.body.addEventListener("htmx:sseOpen", function (evt) {
      failures = 0;
      status("");
      evt.target.setAttribute("data-stream", "open");
    });
    document.body.addEventListener("htmx:sseError", function (evt) {
      var source = evt.detail && evt.detail.source;
      if (!source || source.readyState === EventSource.OPEN) return;
      evt.target.setAttribute("data-stream", "reconnecting");
      if (!countdown) status(message("reconnecting")); // else it says when the next try is
      if (source.readyState === EventSource.CLOSED) {
        failures += 1;
        probe(evt.target, source.url, retryDelay());
      }
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
