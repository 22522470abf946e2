/* hpmail's page behaviours, driven by data- attributes, so that no page needs inline script
   (the Content-Security-Policy allows scripts from /static only). Each one is a small extra:
   the pages work without it.
     data-check-all="NAME"     a checkbox that ticks or unticks every checkbox named NAME
     data-select-row           a link whose table row is marked selected once its htmx request ends
     data-limit-presets='{…}'  a select of sending-limit presets that fills the two limits of its
                               form; typing a limit switches it back to "custom"
     data-auth-choice          the "Authentification" select of an SMTP server: its form's password
                               fields are off unless it says "password"
     data-fill-form="ID"       a button that copies its data-fill-values (JSON: field name ->
                               value) into the form ID, and data-fill-address into its
                               "discovered_for" field (such settings are tested before saving)
     data-copy="ID"            a button that copies the text (or value) of the element ID, then
                               says its data-copied words
     data-confirm="QUESTION"   a form that is sent only once the question is answered yes */
(function () {
  "use strict";

  function applyAuthChoice(select) {
    var form = select.form;
    if (!form) { return; }
    ["password", "forget_password"].forEach(function (name) {
      var input = form.elements[name];
      if (input) { input.disabled = select.value !== "password"; }
    });
  }

  function applyAuthChoices(root) {
    root.querySelectorAll("[data-auth-choice]").forEach(applyAuthChoice);
  }

  document.addEventListener("DOMContentLoaded", function () { applyAuthChoices(document); });
  document.addEventListener("htmx:afterSwap", function (event) {
    applyAuthChoices(event.target.parentNode || document);
  });

  document.addEventListener("change", function (event) {
    var input = event.target;
    if (input.matches("[data-auth-choice]")) {
      applyAuthChoice(input);
      return;
    }
    if (input.matches("[data-check-all]")) {
      var boxes = document.querySelectorAll(
        'input[type=checkbox][name="' + CSS.escape(input.dataset.checkAll) + '"]');
      boxes.forEach(function (box) { box.checked = input.checked; });
      return;
    }
    var form = input.form;
    var presetSelect = form && form.elements.limit_preset;
    if (!presetSelect || !presetSelect.dataset.limitPresets) { return; }
    if (input === presetSelect) {
      var preset = JSON.parse(presetSelect.dataset.limitPresets)[input.value];
      if (preset) {
        form.elements.per_minute.value = preset[0];
        form.elements.per_day.value = preset[1];
      }
    } else if (input.name === "per_minute" || input.name === "per_day") {
      presetSelect.value = "custom";
    }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-fill-form]");
    if (!button) { return; }
    var form = document.getElementById(button.dataset.fillForm);
    if (!form) { return; }
    var values = JSON.parse(button.dataset.fillValues);
    Object.keys(values).forEach(function (name) {
      var input = form.elements.namedItem(name);
      if (input && "value" in input) { input.value = values[name]; }
      if (input && input.matches && input.matches("[data-auth-choice]")) { applyAuthChoice(input); }
    });
    var foundFor = form.elements.namedItem("discovered_for");
    if (foundFor) { foundFor.value = button.dataset.fillAddress; }
    button.textContent = button.dataset.filledLabel;
    var password = form.elements.namedItem("password");
    if (password) { password.focus(); }
  });

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    var source = button && document.getElementById(button.dataset.copy);
    if (!source || !navigator.clipboard) { return; }
    var text = "value" in source ? source.value : source.textContent;
    navigator.clipboard.writeText(text).then(function () {
      button.textContent = button.dataset.copied;
    });
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  });

  document.addEventListener("htmx:afterRequest", function (event) {
    var link = event.target.closest && event.target.closest("[data-select-row]");
    if (!link) { return; }
    var table = link.closest("table");
    table.querySelectorAll("tr.selected").forEach(function (row) {
      row.classList.remove("selected");
    });
    link.closest("tr").classList.add("selected");
  });
}());
