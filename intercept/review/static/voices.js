// Each line with an audio player (flagged lines, timelines) gets a link to its voice's page:
// "other transmissions of this voice". Served by intercept/review/voices.py.
(function () {
  function addVoiceLinks() {
    var players = document.querySelectorAll("audio.intercept-audio[data-line-id]");
    if (!players.length) return;
    var ids = Array.prototype.map.call(players, function (p) { return p.getAttribute("data-line-id"); });
    var base = (window.interceptReview && window.interceptReview.loginUrl || "/-/login").replace(/\/-\/login$/, "");
    fetch(base + "/-/intercept/voices/lines.json?ids=" + ids.slice(0, 500).join(","), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : {}; })
      .then(function (voices) {
        players.forEach(function (player) {
          var voice = voices[player.getAttribute("data-line-id")];
          var holder = player.closest(".intercept-line");
          if (!voice || !holder || holder.querySelector(".intercept-voice")) return;
          var link = document.createElement("a");
          link.className = "intercept-voice";
          link.href = voice.url;
          link.textContent = voice.label;
          link.title = "other transmissions of this voice";
          holder.appendChild(document.createTextNode(" "));
          holder.appendChild(link);
        });
      })
      .catch(function () {});
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", addVoiceLinks);
  else addVoiceLinks();
})();
