// Livestream pages: countdowns that tick, the Jitsi Meet call on the live stage, and the
// recording's error state.
(function () {
  "use strict";

  // "in 2 h 05 min", updated every second, in the reader's language where Intl knows it.
  var units = [["day", 86400], ["hour", 3600], ["minute", 60], ["second", 1]];
  var relative = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(undefined, { numeric: "auto" }) : null;
  function countdowns() {
    document.querySelectorAll("[data-countdown]").forEach(function (el) {
      var left = Math.round((new Date(el.dataset.countdown) - Date.now()) / 1000);
      if (left <= 0) {
        el.textContent = el.dataset.startedText || "";
        return;
      }
      var parts = [];
      for (var i = 0; i < units.length && parts.length < 2; i++) {
        var amount = Math.floor(left / units[i][1]);
        if (amount > 0 || parts.length) {
          parts.push(amount + " " + units[i][0] + (amount === 1 ? "" : "s"));
          left -= amount * units[i][1];
        }
      }
      var first = parts[0].split(" ");
      el.textContent = relative && parts.length === 1 ? relative.format(+first[0], first[1]) : "in " + parts.join(" ");
    });
  }
  window.setInterval(countdowns, 1000);
  countdowns();

  // The call: external_api.js from the Jitsi server named by the page (the CSP allows it).
  var loading = {};
  function loadScript(url) {
    if (!loading[url]) {
      loading[url] = new Promise(function (resolve, reject) {
        var script = document.createElement("script");
        script.src = url;
        script.async = true;
        script.onload = resolve;
        script.onerror = reject;
        document.head.appendChild(script);
      });
    }
    return loading[url];
  }

  function startCall(el) {
    if (el.dataset.started) return;
    el.dataset.started = "true";
    var host = el.dataset.host === "true";
    loadScript(el.dataset.script).then(function () {
      var api = new window.JitsiMeetExternalAPI(el.dataset.domain, {
        roomName: el.dataset.room,
        parentNode: el,
        jwt: el.dataset.jwt || undefined,
        width: "100%",
        height: "100%",
        userInfo: { displayName: el.dataset.name },
        configOverwrite: {
          prejoinPageEnabled: false,
          // Students join with microphone and camera off; the host joins ready to teach.
          startWithAudioMuted: !host,
          startWithVideoMuted: !host,
          disableDeepLinking: true,
        },
      });
      var frame = api.getIFrame && api.getIFrame();
      if (frame) frame.setAttribute("allow", "camera; microphone; display-capture; fullscreen; autoplay; clipboard-write");
      var waiting = el.querySelector(".jitsi-loading");
      if (waiting) waiting.remove();
      el.jitsi = api;
    }, function () {
      var waiting = el.querySelector(".jitsi-loading");
      if (waiting) waiting.remove();
      el.querySelector(".jitsi-failed").hidden = false;
    });
  }

  function init(root) {
    var el = root.querySelector ? root.querySelector("#jitsi") : null;
    if (!el && root.id === "jitsi") el = root;
    if (el) startCall(el);
    countdowns();
  }

  // Leaving the live stage (the stream ended) hangs up.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var el = evt.detail.target && evt.detail.target.querySelector && evt.detail.target.querySelector("#jitsi");
    if (el && el.jitsi) el.jitsi.dispose();
  });
  // A recording that cannot load: say so instead of a player stuck at 0:00. Media errors do not
  // bubble, hence the capture; one that happened before this script ran is in video.error.
  function videoFailed(video) {
    var notice = document.getElementById("video-failed");
    if (!notice) return;
    notice.hidden = false;
    video.classList.add("is-failed");
  }
  document.addEventListener("error", function (evt) {
    var el = evt.target;
    if (el && el.id === "recording-video") videoFailed(el);
    else if (el && el.tagName === "SOURCE" && el.parentNode && el.parentNode.id === "recording-video") videoFailed(el.parentNode);
  }, true);
  var recording = document.getElementById("recording-video");
  if (recording && (recording.error || recording.networkState === 3)) videoFailed(recording);

  document.addEventListener("htmx:load", function (evt) { init(evt.detail.elt); });
  init(document);
})();
