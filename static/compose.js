/* hpmail composer: while a send is in progress (a send without delegation waits for the SMTP
   server), say so and disable the buttons so that the form is not sent twice. Without JavaScript
   the form is sent the same way; the server's one-time token refuses a second send anyway. */
(function () {
  "use strict";

  function buttons(form) {
    return form.querySelectorAll("button[type=submit], button:not([type])");
  }

  function setBusy(form, busy) {
    var status = form.querySelector("[data-send-progress]");
    if (status) { status.hidden = !busy; }
    form.setAttribute("aria-busy", busy ? "true" : "false");
    buttons(form).forEach(function (button) { button.disabled = busy; });
  }

  function watch(form) {
    form.addEventListener("submit", function (event) {
      var submitter = event.submitter;
      // Only the send itself: saving a template or a signature posts to another action.
      if (submitter && submitter.hasAttribute("formaction")) { return; }
      if (form.getAttribute("aria-busy") === "true") { event.preventDefault(); return; }
      // Disabled after the browser has read the form, so the pressed button's value is sent.
      form.setAttribute("aria-busy", "true");
      window.setTimeout(function () { setBusy(form, true); }, 0);
    });
  }

  document.querySelectorAll("form[data-send-form]").forEach(watch);
  // Back from the confirmation page (page cache): the form is usable again.
  window.addEventListener("pageshow", function () {
    document.querySelectorAll("form[data-send-form]").forEach(function (form) {
      setBusy(form, false);
    });
  });
})();
