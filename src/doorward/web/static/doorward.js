// Every page works without this script. It checks, before a form is sent, what the server will check
// again anyway (the server stays the judge), and shows what is wrong next to the field, announced to
// screen readers (aria-live). Lengths count code points after NFKC, as the server does; the minimum
// comes from the page (data-min, rendered from DOORWARD_PASSWORD_MIN_LENGTH).
"use strict";
(function () {
  var EMAIL_SHAPE = /^[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+$/u; // core/emails.py, _SHAPE
  var MAX_EMAIL_LENGTH = 254;
  var CONTEXT = "The password must not contain your email address or the name of this service";

  function canonical(email) {
    return email.normalize("NFKC").trim().toLowerCase();
  }

  function codePoints(text) {
    return Array.from(text.normalize("NFKC")).length;
  }

  function labelOf(input) {
    var label = document.querySelector('label[for="' + input.id + '"]');
    return label ? label.textContent.trim() : input.name;
  }

  function emailOf(form) {
    var input = form.querySelector('[data-rule="email"], [data-email]');
    return input ? canonical(input.value) : "";
  }

  // The reason the server would give, in its words; "" when the value passes.
  function problem(input, form) {
    var value = input.value;
    var rule = input.getAttribute("data-rule");
    if (rule === "email") {
      var email = canonical(value);
      if (!email) return labelOf(input) + " is required";
      if (email.length > MAX_EMAIL_LENGTH) return "Email address must be at most " + MAX_EMAIL_LENGTH + " characters";
      return EMAIL_SHAPE.test(email) ? "" : "Email address is not valid";
    }
    if (!value) return labelOf(input) + " is required";
    if (rule === "new-password") {
      var min = Number(input.getAttribute("data-min"));
      var max = Number(input.getAttribute("data-max"));
      var length = codePoints(value);
      if (length < min) return "Password must be at least " + min + " characters";
      if (length > max) return "Password must be at most " + max + " characters";
      var folded = value.normalize("NFKC").toLowerCase();
      var email = emailOf(form);
      var local = email.split("@")[0];
      if ((email && folded.indexOf(email) >= 0) || (local.length >= 4 && folded.indexOf(local) >= 0)) {
        return CONTEXT;
      }
    }
    return "";
  }

  function show(input, message) {
    var slot = document.getElementById(input.id + "-error");
    if (slot && slot.textContent !== message) slot.textContent = message;
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  Array.prototype.forEach.call(document.querySelectorAll("form[data-check]"), function (form) {
    form.noValidate = true; // our messages replace the browser's bubbles
    form.addEventListener("submit", function (event) {
      var first = null;
      Array.prototype.forEach.call(form.querySelectorAll("input[data-rule]"), function (input) {
        var message = problem(input, form);
        show(input, message);
        if (message && !first) first = input;
      });
      if (first) {
        event.preventDefault();
        first.focus();
      }
    });
    // Once a field was marked wrong, say as soon as it is right (or what is wrong now).
    form.addEventListener("input", function (event) {
      var input = event.target;
      if (input.hasAttribute("data-rule") && input.getAttribute("aria-invalid") === "true") {
        show(input, problem(input, form));
      }
    });
  });
})();
