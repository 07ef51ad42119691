// intercept review desk: marks the flagged words in Datasette's table cells (fragments from
// /-/intercept/lines.json), adds a context link to each line, and keyboard review on the
// flagged page, the timeline and the desk's own pages. Verdicts go to the verdict route by
// fetch, so the page is not reloaded.
document.addEventListener("DOMContentLoaded", function () {
  var settings = window.interceptReview || {};
  var KEYS = [["j / \u2193", "next line"], ["k / \u2191", "previous line"], ["p / space", "play or replay (from the lead-in)"],
    ["c", "confirmed"], ["f", "false positive"], ["u", "unsure"], ["w", "withdraw my verdicts"],
    ["e", "write a note"], ["n", "next line awaiting a verdict"], ["x", "context of the line"]];
  var VERDICT_KEYS = {c: "confirmed", f: "false_positive", u: "unsure"};

  // Rows of Datasette tables holding a line player become review items.
  var tableRows = [];
  document.querySelectorAll("table.rows-and-columns tr audio[data-line-id]").forEach(function (audio) {
    var row = audio.closest("tr");
    row.classList.add("intercept-item");
    row.dataset.lineId = audio.dataset.lineId;
    var shown = row.querySelector(".intercept-verdict-current");
    if (shown && !shown.classList.contains("intercept-v-none")) row.dataset.verdict = shown.textContent.trim();
    // Only a flagged line takes a verdict: its row has the verdict form.
    if (row.querySelector("form.intercept-verdict")) row.dataset.flagged = "1";
    tableRows.push(row);
  });
  var items = Array.prototype.slice.call(document.querySelectorAll(".intercept-item"));
  if (!items.length) return;

  function status(text) {
    var box = document.querySelector(".intercept-key-status");
    if (box) box.textContent = text;
  }

  if (tableRows.length) {
    // The keys, documented on the page, above the table.
    var table = document.querySelector("table.rows-and-columns");
    var help = document.createElement("details");
    help.className = "intercept-keys";
    help.open = true;
    help.innerHTML = "<summary>Keyboard review</summary><p>" + KEYS.map(function (k) {
      return "<kbd>" + k[0] + "</kbd> " + k[1];
    }).join(" \u00b7 ") + ". The verdict is saved at once, without reloading the page" +
      (settings.canWrite ? "" : " (log in first)") + ".</p><p class=\"intercept-key-status\" role=\"status\" aria-live=\"polite\"></p>";
    table.parentNode.insertBefore(help, table);
    tableRows.forEach(function (row) {
      var player = row.querySelector("div.intercept-line");
      if (player && settings.contextUrl) {
        var link = document.createElement("a");
        link.className = "intercept-context-link";
        link.href = settings.contextUrl + row.dataset.lineId;
        link.title = "the transmissions before and after this line, with their audio";
        link.textContent = "context";
        player.appendChild(document.createTextNode(" "));
        player.appendChild(link);
      }
    });
    // Marked text, trust and flags for the lines on the page, in one request.
    var ids = tableRows.map(function (row) { return row.dataset.lineId; });
    fetch(settings.linesUrl + "?ids=" + ids.join(","), {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : {}; })
      .then(function (lines) {
        tableRows.forEach(function (row) {
          var line = lines[row.dataset.lineId];
          if (!line) return;
          var fa = row.querySelector("td.col-text_fa");
          if (fa) fa.innerHTML = line.fa;
          var en = row.querySelector("td.col-text_en");
          if (en) en.innerHTML = line.en + line.trust;
          var concepts = row.querySelector("td.col-concepts");
          if (concepts && line.flags) concepts.innerHTML = line.flags;
          var start = row.querySelector("td.col-start_s");
          if (start && line.at) {
            start.insertAdjacentHTML("beforeend", '<div class="intercept-at" title="when it was said (UTC)">' +
              line.at.slice(0, 19).replace("T", " ") + "</div>");
          }
          row.classList.add("intercept-marked");
        });
        document.body.classList.add("intercept-marks-ready");
      });
  }

  // An evidence bundle (audio cut from the originals, manifest) of the lines on screen.
  if (settings.bundleUrl && !document.querySelector(".intercept-bundle")) {
    var anchor = document.querySelector("details.intercept-keys");
    var download = document.createElement("p");
    download.className = "intercept-bundle";
    // The server cuts at most bundleMaxLines lines a request: offer the first ones, and say so.
    var most = settings.bundleMaxLines || items.length;
    var bundled = items.slice(0, most);
    download.innerHTML = '<a class="intercept-bundle-link" href="' + settings.bundleUrl + "?ids=" +
      bundled.map(function (item) { return item.dataset.lineId; }).join(",") + '">Download the evidence bundle of the ' +
      (bundled.length < items.length ? "first " + bundled.length + " of the " : "") +
      items.length + " lines on screen</a> (ZIP: each line's audio from the original, manifest.json; " +
      "check it with <code>intercept verify --bundle</code>)";
    anchor.parentNode.insertBefore(download, anchor.nextSibling);
  }

  var current = Math.max(0, items.findIndex(function (item) { return item.classList.contains("intercept-focus"); }));
  function select(index, scroll) {
    if (index < 0 || index >= items.length) return;
    items[current].classList.remove("intercept-current");
    current = index;
    items[current].classList.add("intercept-current");
    if (scroll !== false) items[current].scrollIntoView({block: "nearest"});
  }
  // No scrolling on load: the page opens where it starts (the menu and login stay in view).
  select(current, false);

  function leadInUrl(item) {
    var link = item.querySelector("a.intercept-context");
    return link ? link.href : null;
  }
  function play(item) {
    var audio = item.querySelector("audio[data-line-id]");
    if (!audio) return;
    var url = leadInUrl(item);
    if (url && audio.src !== url) audio.src = url;  // start from the lead-in the page offers
    audio.currentTime = 0;
    audio.play().catch(function (error) { status("cannot play line " + item.dataset.lineId + ": " + error); });
  }

  function post(url, body) {
    return fetch(url, {method: "POST", body: body, credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok) return response.text().then(function (text) { throw new Error(text.trim()); });
        return response.json();
      });
  }

  // The line's review block (verdicts per flag, notes, reviewer flag) drawn again after a write.
  function refresh(item) {
    if (!settings.reviewUrl) return Promise.resolve();
    return fetch(settings.reviewUrl + "?ids=" + item.dataset.lineId, {credentials: "same-origin"})
      .then(function (response) { return response.ok ? response.json() : {}; })
      .then(function (lines) {
        var line = lines[item.dataset.lineId];
        var block = item.querySelector(".intercept-review");
        if (!line) return;
        if (block) block.outerHTML = line.review;
        if (line.flagged) item.dataset.flagged = "1";
        showVerdict(item, line.verdict);
      });
  }

  function showVerdict(item, verdict) {
    if (verdict) item.dataset.verdict = verdict; else delete item.dataset.verdict;
    item.classList.toggle("intercept-judged", !!verdict && verdict !== "disputed");
    item.querySelectorAll(".intercept-verdict-current").forEach(function (shown) {
      shown.textContent = (verdict || "awaiting review").replace("_", " ");
      shown.className = "intercept-verdict-current intercept-v-" + (verdict || "none");
    });
  }

  function judge(item, verdict) {
    if (!settings.canWrite) { status("Log in to record verdicts."); return; }
    if (!item.dataset.flagged) {
      status("line " + item.dataset.lineId + " has no flag: no verdict. Mark it as coded, or leave a note.");
      return;
    }
    var body = new URLSearchParams();
    body.set("line_id", item.dataset.lineId);
    body.set("verdict", verdict);
    body.set("csrftoken", settings.csrftoken);
    var note = item.querySelector('form.intercept-verdict input[name="note"], form.intercept-note-form textarea');
    if (note && note.value) body.set("note", note.value);
    status("line " + item.dataset.lineId + ": saving " + verdict.replace("_", " ") + "\u2026");
    post(settings.verdictUrl, body)
      .then(function (saved) {
        if (note) note.value = "";
        showVerdict(item, saved.line_verdict);
        status("line " + saved.line_id + ": " + saved.verdict.replace("_", " ") + " (saved as " + saved.reviewer + ")" +
               (saved.line_verdict === "disputed" ? ": reviewers differ, the line goes to a lead" : ""));
        return refresh(item).then(function () { if (verdict !== "withdrawn") select(current + 1); });
      })
      .catch(function (error) { status("line " + item.dataset.lineId + ": not saved: " + error.message); });
  }

  function saveNote(item, field) {
    if (!field.value.trim()) return;
    var body = new URLSearchParams();
    body.set("line_id", item.dataset.lineId);
    body.set("note", field.value);
    body.set("csrftoken", settings.csrftoken);
    post(settings.noteUrl, body)
      .then(function () { field.value = ""; status("line " + item.dataset.lineId + ": note saved"); return refresh(item); })
      .catch(function (error) { status("line " + item.dataset.lineId + ": note not saved: " + error.message); });
  }

  // The review block's forms (verdict per flag, withdrawal, decision, note, reviewer flag,
  // claims) go by fetch; the block is drawn again from the server.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.classList || !form.classList.contains("intercept-action")) return;
    event.preventDefault();
    var body = new URLSearchParams(new FormData(form));
    if (event.submitter && event.submitter.name) body.set(event.submitter.name, event.submitter.value);
    var item = form.closest(".intercept-item");
    post(form.action, body)
      .then(function (saved) {
        status((item ? "line " + item.dataset.lineId + ": " : "") + "saved" + (saved.reviewer ? " as " + saved.reviewer : ""));
        if (item) return refresh(item);
        window.location.reload();
      })
      .catch(function (error) { status("not saved: " + error.message); window.alert(error.message); });
  });

  // In a note: Enter never submits a verdict; Ctrl+Enter saves the note; Esc returns to the keys.
  document.addEventListener("keydown", function (event) {
    var field = event.target;
    if (!field || !field.closest) return;
    var item = field.closest(".intercept-item");
    var isNote = field.name === "note" && (field.tagName === "TEXTAREA" || field.tagName === "INPUT");
    if (!isNote) return;
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      if (item) saveNote(item, field);
    } else if (event.key === "Enter" && field.tagName === "INPUT") {
      event.preventDefault();  // a one-line note field: Enter does nothing
    } else if (event.key === "Escape") {
      event.preventDefault();
      field.blur();
      if (item) item.focus();
    }
  }, true);

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(target.tagName))) return;
    var item = items[current];
    var key = event.key;
    if (key === "j" || key === "ArrowDown") select(current + 1);
    else if (key === "k" || key === "ArrowUp") select(current - 1);
    else if (key === "p" || key === " ") play(item);
    else if (VERDICT_KEYS[key]) judge(item, VERDICT_KEYS[key]);
    else if (key === "w") judge(item, "withdrawn");
    else if (key === "e") {
      var field = item.querySelector('form.intercept-note-form textarea, form.intercept-verdict input[name="note"]');
      if (field) field.focus();
    }
    else if (key === "n") {
      for (var i = current + 1; i < items.length; i++) {
        if (items[i].dataset.flagged && !items[i].dataset.verdict) { select(i); break; }
      }
    } else if (key === "x" && settings.contextUrl) window.location.href = settings.contextUrl + item.dataset.lineId;
    else return;
    event.preventDefault();
  });
});
