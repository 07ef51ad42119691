// intercept review desk: correcting a line's text (intercept/review/corrections.py). On every page
// with line players (the queue, the timeline, the context and correct-next pages): e edits the
// selected line (Farsi right to left, the clip looping, slower on demand; English optional),
// Ctrl+Enter saves, Esc cancels; each corrected line shows its history. The correction is saved by
// fetch and the line's text, trust and flags are shown again as the server derived them.
document.addEventListener("DOMContentLoaded", function () {
  // After desk.js has made its review items (its handler runs on the same event).
  setTimeout(start, 0);
});

function start() {
  var settings = window.interceptCorrections || {};
  var review = window.interceptReview || {};
  var SPEEDS = [1, 0.75, 0.5];
  var EN_FROM = {
    reviewer: "typed by a reviewer",
    corrected_fa: "translated from the corrected Farsi",
    uncorrected_fa: "the old English, made from the uncorrected text: not reliable"
  };

  function items() {
    var found = Array.prototype.slice.call(document.querySelectorAll(".intercept-item[data-line-id]"));
    if (found.length) return found;
    return Array.prototype.slice.call(document.querySelectorAll("table.rows-and-columns tr audio[data-line-id]"))
      .map(function (audio) {
        var row = audio.closest("tr");
        row.dataset.lineId = audio.dataset.lineId;
        return row;
      });
  }
  var all = items();
  if (!all.length || !settings.revisionsUrl) return;

  function status(text) {
    var box = document.querySelector(".intercept-key-status");
    if (box) box.textContent = text;
  }
  function el(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }
  function isRow(item) { return item.tagName === "TR"; }
  function historyHost(item) {
    // In a table the text cells are refilled by desk.js: the history goes beside the player.
    if (isRow(item)) {
      var audio = item.querySelector("audio[data-line-id]");
      return audio ? audio.closest("td") : item.lastElementChild;
    }
    return item;
  }

  function showHistory(item, line) {
    var host = historyHost(item);
    var old = host.querySelector(".intercept-history");
    if (old) old.remove();
    if (!line || !line.history || !line.history.length) return;
    var box = el("details", {"class": "intercept-history"});
    var summary = el("summary");
    summary.appendChild(el("span", {"class": "intercept-corrected-badge"}, "corrected"));
    var last = line.history[line.history.length - 1];
    summary.appendChild(document.createTextNode(" " + line.history.length + " revision" +
      (line.history.length > 1 ? "s" : "") + ", last by " + last.reviewer + " at " + last.at.replace("T", " ").slice(0, 19)));
    box.appendChild(summary);
    var list = el("ol");
    var machine = el("li", {"class": "intercept-machine"});
    machine.appendChild(document.createTextNode("machine: "));
    machine.appendChild(el("span", {"class": "intercept-fa", dir: "rtl", lang: "fa"}, line.text_fa_machine || ""));
    if (line.text_en_machine) machine.appendChild(el("div", {dir: "ltr"}, line.text_en_machine));
    list.appendChild(machine);
    line.history.forEach(function (revision) {
      var entry = el("li", {"class": "intercept-revision", "data-revision-id": revision.id});
      entry.appendChild(document.createTextNode("revision " + revision.id + " by " + revision.reviewer + ", " +
        revision.at.replace("T", " ").slice(0, 19) + ": "));
      entry.appendChild(el("span", {"class": "intercept-fa", dir: "rtl", lang: "fa"}, revision.text_fa));
      if (revision.text_en) entry.appendChild(el("div", {dir: "ltr"}, revision.text_en));
      if (revision.note) entry.appendChild(el("div", {"class": "intercept-revision-note"}, "note: " + revision.note));
      list.appendChild(entry);
    });
    box.appendChild(list);
    var source = EN_FROM[line.text_en_from];
    if (source) box.appendChild(el("div", {"class": "intercept-en-from"}, "English now: " + source));
    if (line.superseded_flags) {
      box.appendChild(el("div", {}, line.superseded_flags + " earlier flag" + (line.superseded_flags > 1 ? "s" : "") +
        " kept, superseded (out of the queue)"));
    }
    host.appendChild(box);
  }

  var known = {};
  function load(ids) {
    return fetch(settings.revisionsUrl + "?ids=" + ids.join(","), {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : {}; })
      .then(function (lines) {
        Object.keys(lines).forEach(function (id) { known[id] = lines[id]; });
        return lines;
      });
  }
  var ids = all.map(function (item) { return item.dataset.lineId; });
  for (var first = 0; first < ids.length; first += 500) {
    load(ids.slice(first, first + 500)).then(function (lines) {
      all.forEach(function (item) {
        var line = lines[item.dataset.lineId];
        if (line && line.history.length) showHistory(item, line);
      });
      document.body.classList.add("intercept-history-ready");
    });
  }

  // Put the line's derived text, trust and flags back on the page (desk's fragments).
  function refresh(item, line) {
    var id = item.dataset.lineId;
    var linesUrl = settings.linesUrl || review.linesUrl;
    return fetch(linesUrl + "?ids=" + id, {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : {}; })
      .then(function (fragments) {
        var part = fragments[id];
        if (isRow(item)) {
          var fa = item.querySelector("td.col-text_fa");
          var en = item.querySelector("td.col-text_en");
          var concepts = item.querySelector("td.col-concepts");
          if (part) {
            if (fa) fa.innerHTML = part.fa;
            if (en) en.innerHTML = part.en + part.trust;
            if (concepts) concepts.innerHTML = part.flags || "";
          } else {
            if (fa) fa.textContent = line.text_fa;
            if (en) en.textContent = line.text_en || "";
          }
        } else if (part) {
          var holder = document.createElement("div");
          holder.innerHTML = part.fa;
          var shown = item.querySelector(".intercept-fa");
          if (shown) shown.innerHTML = holder.querySelector(".intercept-fa").innerHTML;
          [["en", ".intercept-en"], ["trust", ".intercept-trust"], ["flags", ".intercept-flags"]].forEach(function (pair) {
            var old = item.querySelector(pair[1]);
            var html = pair[0] === "en" ? part.en : part[pair[0]];
            if (old) old.outerHTML = html || "";
            else if (html) item.querySelector(".intercept-fa").insertAdjacentHTML("afterend", html);
          });
        } else {
          var plain = item.querySelector(".intercept-fa");
          if (plain) plain.textContent = line.text_fa;
          var english = item.querySelector(".intercept-en");
          if (english) english.textContent = line.text_en || "";
        }
      });
  }

  function close(editor) {
    var audio = editor.querySelector("audio");
    if (audio) audio.pause();
    var row = editor.closest("tr.intercept-editor-row");
    (row || editor).remove();
  }

  function save(editor) {
    var item = editor.interceptItem;
    var body = new URLSearchParams();
    body.set("line_id", item.dataset.lineId);
    body.set("text_fa", editor.querySelector("textarea[name=text_fa]").value);
    body.set("text_en", editor.querySelector("textarea[name=text_en]").value);
    body.set("note", editor.querySelector("input[name=note]").value);
    body.set("replaces", editor.dataset.replaces || "");
    body.set("csrftoken", settings.csrftoken);
    var shown = editor.querySelector(".intercept-editor-status");
    shown.textContent = "saving\u2026";
    fetch(settings.correctUrl, {method: "POST", body: body, credentials: "same-origin",
                                headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) return response.text().then(function (text) { throw new Error(text.trim()); });
        return response.json();
      })
      .then(function (saved) {
        known[item.dataset.lineId] = saved;
        close(editor);
        item.classList.add("intercept-corrected");
        showHistory(item, saved);
        status("line " + saved.line_id + ": corrected (revision " + saved.revision_id + ", saved as " + saved.reviewer +
          "); flags now: " + (saved.flags.map(function (f) { return f.concept; }).join(", ") || "none"));
        return refresh(item, saved);
      })
      .catch(function (error) {
        if (document.body.contains(shown)) shown.textContent = "not saved: " + error.message;
        else status("line " + item.dataset.lineId + ": " + error.message);
      });
  }

  function open(item) {
    if (!settings.canWrite) { status("Log in to correct lines."); return; }
    var id = item.dataset.lineId;
    var existing = document.querySelector('.intercept-editor[data-line-id="' + id + '"]');
    if (existing) { existing.querySelector("textarea").focus(); return; }
    var ready = known[id] ? Promise.resolve(known[id]) : load([id]).then(function (lines) { return lines[id]; });
    ready.then(function (line) {
      if (!line) { status("line " + id + ": not found"); return; }
      var editor = el("form", {"class": "intercept-editor", "data-line-id": id});
      editor.interceptItem = item;
      editor.dataset.replaces = line.revision_id === null || line.revision_id === undefined ? "" : line.revision_id;
      editor.appendChild(el("div", {"class": "intercept-editor-hint"},
        "Correct line " + id + " as it was said. Ctrl+Enter saves, Esc cancels. The machine's text stays in the history."));
      var player = el("div", {"class": "intercept-editor-audio"});
      var audio = el("audio", {controls: "", loop: "", preload: "auto", src: settings.audioUrl + id + ".wav"});
      audio.loop = true;
      player.appendChild(audio);
      var speed = el("select", {name: "speed", title: "playback speed"});
      SPEEDS.forEach(function (rate) { speed.appendChild(el("option", {value: rate}, rate === 1 ? "normal speed" : rate + "\u00d7")); });
      speed.addEventListener("change", function () { audio.playbackRate = parseFloat(speed.value); });
      player.appendChild(speed);
      editor.appendChild(player);
      var fa = el("textarea", {name: "text_fa", dir: "rtl", lang: "fa", "class": "intercept-fa", rows: "2",
                               "aria-label": "Farsi"});
      fa.value = line.text_fa || "";
      editor.appendChild(fa);
      var en = el("textarea", {name: "text_en", dir: "auto", lang: "en", rows: "2", "aria-label": "English (optional)",
                               placeholder: "English (optional; empty: " + (line.text_en ? "translated, or the old English marked as made from the uncorrected text" : "none") + ")"});
      // Only a reviewer's own English is offered for editing; a machine English is not re-submitted as theirs.
      en.value = line.text_en_from === "reviewer" ? (line.text_en || "") : "";
      editor.appendChild(en);
      editor.appendChild(el("input", {name: "note", type: "text", placeholder: "note (optional)", maxlength: "4000"}));
      var buttons = el("div");
      var saveButton = el("button", {type: "submit", "class": "intercept-save"}, "Save (Ctrl+Enter)");
      var cancelButton = el("button", {type: "button", "class": "intercept-cancel"}, "Cancel (Esc)");
      buttons.appendChild(saveButton);
      buttons.appendChild(cancelButton);
      editor.appendChild(buttons);
      editor.appendChild(el("p", {"class": "intercept-editor-status", role: "status", "aria-live": "polite"}));
      editor.addEventListener("submit", function (event) { event.preventDefault(); save(editor); });
      cancelButton.addEventListener("click", function () { close(editor); });
      if (isRow(item)) {
        var row = el("tr", {"class": "intercept-editor-row"});
        var cell = el("td", {colspan: String(item.children.length)});
        cell.appendChild(editor);
        row.appendChild(cell);
        item.parentNode.insertBefore(row, item.nextSibling);
      } else {
        item.appendChild(editor);
      }
      fa.focus();
      fa.setSelectionRange(fa.value.length, fa.value.length);
      audio.play().catch(function () { /* the reviewer can press play */ });
    });
  }

  function currentItem() {
    return document.querySelector(".intercept-item.intercept-current") || items()[0];
  }

  // The key, in the keyboard help above the lines.
  var help = document.querySelector("details.intercept-keys p");
  if (help && !/\bedit\b/.test(help.textContent)) {
    var key = el("span", {"class": "intercept-edit-key"});
    key.appendChild(el("kbd", {}, "e"));
    key.appendChild(document.createTextNode(" edit the line's text (Ctrl+Enter saves, Esc cancels)."));
    help.appendChild(document.createTextNode(" "));
    help.appendChild(key);
  }

  all.forEach(function (item) {
    if (!settings.canWrite) return;
    var button = el("button", {type: "button", "class": "intercept-edit-button", title: "correct this line's text (e)"}, "edit");
    button.addEventListener("click", function () { open(item); });
    var host = isRow(item) ? historyHost(item) : (item.querySelector(".intercept-line") || item);
    host.appendChild(button);
  });

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    var editor = target && target.closest ? target.closest(".intercept-editor") : null;
    if (editor) {
      if (event.key === "Escape") { close(editor); event.preventDefault(); }
      else if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { save(editor); event.preventDefault(); }
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(target.tagName))) return;
    if (event.key === "e") {
      var item = currentItem();
      if (item) { open(item); event.preventDefault(); }
    }
  });
}
