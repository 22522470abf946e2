/* hpmail rich-text editor: a contenteditable area with a small toolbar (document.execCommand).
   It enhances every <textarea data-editor>; the textarea stays the form field, kept in sync, so the
   page works without JavaScript. The server sanitises the HTML whatever this script sends.
   The toolbar's words come from the page, in the reader's language: data-editor-buttons holds
   [[command, shown, title], …] and data-editor-link-prompt the question asked for a link.
   A letter's editor also has data-editor-fields, [[label, text], …]: the « Insérer un champ » menu
   (data-editor-fields-label) writes a field's text where the cursor is. */
(function () {
  "use strict";

  function looksLikeHtml(text) { return /<[a-z!\/]/i.test(text); }

  function escapeHtml(text) {
    return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }

  function enhance(textarea) {
    if (textarea.dataset.enhanced) { return; }
    textarea.dataset.enhanced = "1";
    var wrapper = document.createElement("div");
    wrapper.className = "editor";
    var toolbar = document.createElement("div");
    toolbar.className = "editor-toolbar";
    toolbar.setAttribute("role", "toolbar");
    var area = document.createElement("div");
    area.className = "editor-area";
    area.contentEditable = "true";
    area.setAttribute("role", "textbox");
    area.setAttribute("aria-multiline", "true");
    if (textarea.id) { area.setAttribute("aria-labelledby", textarea.id + "-label"); }
    var initial = textarea.value;
    area.innerHTML = looksLikeHtml(initial) ? initial
      : escapeHtml(initial).split(/\n/).join("<br>");

    JSON.parse(textarea.dataset.editorButtons || "[]").forEach(function (spec) {
      var button = document.createElement("button");
      button.type = "button";
      button.textContent = spec[1];
      button.title = spec[2];
      button.setAttribute("aria-label", spec[2]);
      button.addEventListener("mousedown", function (event) { event.preventDefault(); });
      button.addEventListener("click", function () {
        area.focus();
        var parts = spec[0].split(":");
        if (parts[0] === "createLink") {
          var url = window.prompt(textarea.dataset.editorLinkPrompt, "https://");
          if (!url || !/^(https?:|mailto:)/i.test(url)) { return; }
          document.execCommand("createLink", false, url);
        } else {
          document.execCommand(parts[0], false, parts[1] || null);
        }
        sync();
      });
      toolbar.appendChild(button);
    });

    var fields = JSON.parse(textarea.dataset.editorFields || "[]");
    if (fields.length) { toolbar.appendChild(fieldsMenu(fields)); }

    // Where the cursor was in the text, so that a field goes there even after a click elsewhere.
    var lastRange = null;
    function keepRange() {
      var selection = window.getSelection();
      if (selection.rangeCount && area.contains(selection.getRangeAt(0).commonAncestorContainer)) {
        lastRange = selection.getRangeAt(0).cloneRange();
      }
    }
    document.addEventListener("selectionchange", keepRange);

    function insertField(text) {
      area.focus();
      var selection = window.getSelection();
      selection.removeAllRanges();
      if (lastRange) { selection.addRange(lastRange); } else {
        var end = document.createRange();
        end.selectNodeContents(area);
        end.collapse(false);
        selection.addRange(end);
      }
      if (looksLikeHtml(text)) {
        // Built from the text, not by insertHTML (Chromium would add style attributes, which the
        // Content-Security-Policy refuses); then told as typing, for the preview.
        var template = document.createElement("template");
        template.innerHTML = text;
        var range = selection.getRangeAt(0);
        range.deleteContents();
        var last = template.content.lastChild;
        range.insertNode(template.content);
        range.setStartAfter(last);
        range.collapse(true);
        selection.removeAllRanges();
        selection.addRange(range);
        area.dispatchEvent(new Event("input", { bubbles: true }));
      } else {
        document.execCommand("insertText", false, text);
      }
      sync();
    }

    function fieldsMenu(specs) {
      var menu = document.createElement("details");
      menu.className = "editor-fields";
      var summary = document.createElement("summary");
      summary.textContent = textarea.dataset.editorFieldsLabel;
      summary.addEventListener("mousedown", function (event) { event.preventDefault(); });
      menu.appendChild(summary);
      var list = document.createElement("div");
      list.className = "editor-fields-list";
      list.setAttribute("role", "menu");
      specs.forEach(function (spec) {
        var button = document.createElement("button");
        button.type = "button";
        button.setAttribute("role", "menuitem");
        button.textContent = spec[0];
        button.title = spec[1];
        button.addEventListener("mousedown", function (event) { event.preventDefault(); });
        button.addEventListener("click", function () {
          insertField(spec[1]);
          menu.open = false;
        });
        list.appendChild(button);
      });
      menu.appendChild(list);
      return menu;
    }

    function sync() { textarea.value = area.innerHTML; }
    area.addEventListener("input", sync);
    area.addEventListener("blur", sync);
    if (textarea.form) { textarea.form.addEventListener("submit", sync); }

    textarea.hidden = true;
    textarea.parentNode.insertBefore(wrapper, textarea);
    wrapper.appendChild(toolbar);
    wrapper.appendChild(area);
    wrapper.appendChild(textarea);
    var label = textarea.id && document.querySelector('label[for="' + textarea.id + '"]');
    if (label) {
      label.id = textarea.id + "-label";
      label.addEventListener("click", function () { area.focus(); });
    }
    sync();
  }

  function init() {
    try { document.execCommand("defaultParagraphSeparator", false, "p"); } catch (e) { /* old */ }
    Array.prototype.forEach.call(document.querySelectorAll("textarea[data-editor]"), enhance);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", init); }
  else { init(); }
})();

/* "Autres": a person ticked among the search results moves to the picked list, so that a new
   search does not drop them. */
document.addEventListener("change", function (event) {
  var box = event.target;
  if (box.name !== "other_ids" || !box.checked) { return; }
  var found = document.getElementById("people-found");
  var picked = document.getElementById("people-picked");
  if (found && picked && found.contains(box)) { picked.appendChild(box.closest("li")); }
});
