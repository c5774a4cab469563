// The console's one script, loaded from our own origin (no inline script, CSP 'self'). Every page
// works without it; it adds:
// - confirmation before a form marked data-confirm="question" is sent;
// - "select all" for bulk forms (a checkbox with data-select-all="name");
// - upload with a progress bar for forms marked data-upload (the file goes to the form's
//   data-upload URL as the raw body, the answer's media reference into the hidden field named by
//   data-media-field, and then the form is sent as usual).
"use strict";

document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

document.addEventListener("change", function (event) {
  var box = event.target;
  var name = box.getAttribute && box.getAttribute("data-select-all");
  if (!name) return;
  var boxes = box.form.querySelectorAll('input[type="checkbox"][name="' + name + '"]');
  for (var i = 0; i < boxes.length; i++) boxes[i].checked = box.checked;
});

document.addEventListener("submit", function (event) {
  var form = event.target;
  var url = form.getAttribute("data-upload");
  if (!url || form.getAttribute("data-uploaded") === "yes") return;
  var input = form.querySelector('input[type="file"]');
  if (!input || !input.files || input.files.length === 0) return;
  event.preventDefault();
  var file = input.files[0];
  var bar = form.querySelector("progress");
  var status = form.querySelector("[data-upload-status]");
  var request = new XMLHttpRequest();
  request.open("POST", url);
  request.setRequestHeader("Content-Type", file.type || "application/octet-stream");
  request.setRequestHeader("X-CSRF-Token", form.querySelector('input[name="_csrf"]').value);
  request.upload.addEventListener("progress", function (e) {
    if (e.lengthComputable && bar) {
      bar.max = e.total;
      bar.value = e.loaded;
      if (status) status.textContent = Math.round((100 * e.loaded) / e.total) + " %";
    }
  });
  request.addEventListener("load", function () {
    if (request.status >= 200 && request.status < 300) {
      var answer = JSON.parse(request.responseText);
      form.querySelector('input[name="' + form.getAttribute("data-media-field") + '"]').value =
        answer.sha256;
      input.disabled = true;
      form.setAttribute("data-uploaded", "yes");
      form.submit();
    } else if (status) {
      var problem = {};
      try { problem = JSON.parse(request.responseText); } catch (e) { /* not JSON */ }
      status.textContent = problem.detail || request.statusText;
      status.setAttribute("role", "alert");
    }
  });
  request.send(file);
});
