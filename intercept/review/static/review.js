// intercept review: fills each verdict form with the CSRF token and the page to return to,
// hides the forms from visitors who may not write, and marks flagged lines in timelines.
document.addEventListener("DOMContentLoaded", function () {
  var settings = window.interceptReview || { canWrite: false, csrftoken: "", loginUrl: "/-/login" };
  var forms = document.querySelectorAll("form.intercept-verdict");
  forms.forEach(function (form) {
    if (!settings.canWrite) {
      form.remove();
      return;
    }
    form.querySelector('input[name="csrftoken"]').value = settings.csrftoken;
    form.querySelector('input[name="next"]').value = window.location.pathname + window.location.search;
  });
  if (forms.length && !settings.canWrite) {
    var table = document.querySelector("table.rows-and-columns");
    if (table) {
      var hint = document.createElement("p");
      hint.className = "intercept-login-hint";
      hint.innerHTML = 'Read only. <a href="' + settings.loginUrl + '">Log in</a> to record verdicts.';
      table.parentNode.insertBefore(hint, table);
    }
  }
  // Timeline (a query page): a row whose concepts cell is not empty holds a flagged line.
  document.querySelectorAll("body.query td.col-concepts").forEach(function (cell) {
    if (cell.textContent.trim() && cell.textContent.trim() !== "\u00a0") {
      cell.parentNode.classList.add("intercept-flagged");
    }
  });
});
// Search boxes take Farsi as well as English: each sets its direction from what is typed.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll('input[name="_search"], input[name^="_search_"], input[type="search"], textarea')
    .forEach(function (field) { if (!field.getAttribute("dir")) field.setAttribute("dir", "auto"); });
});
