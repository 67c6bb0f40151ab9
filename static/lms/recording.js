// The recording page: clicking a chapter or a transcript item plays from its time; the
// transcript follows playback (the current item is highlighted and kept in view).
(function () {
  "use strict";
  var video = document.getElementById("recording-video");
  if (!video) return;
  var items = Array.prototype.slice.call(document.querySelectorAll(".transcript-item[data-at]"));

  document.addEventListener("click", function (evt) {
    var button = evt.target.closest && evt.target.closest(".seek[data-at]");
    if (!button) return;
    video.currentTime = parseFloat(button.dataset.at);
    var playing = video.play();
    if (playing && playing.catch) playing.catch(function () { /* autoplay refused: stay paused there */ });
  });

  var current = null;
  video.addEventListener("timeupdate", function () {
    var now = video.currentTime, found = null;
    for (var i = 0; i < items.length && parseFloat(items[i].dataset.at) <= now; i++) found = items[i];
    if (found === current) return;
    if (current) { current.classList.remove("is-current"); current.removeAttribute("aria-current"); }
    current = found;
    if (current) {
      current.classList.add("is-current");
      current.setAttribute("aria-current", "time");
      current.scrollIntoView({ block: "nearest" });
    }
  });
})();
