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
    if (rule === "optional") return "";
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

// Passkeys (WebAuthn Level 3). Their forms are hidden in the HTML: this shows them only where the
// browser can parse the API's JSON options, so without the script (or without passkeys) nothing of
// them shows. The options come from the JSON API; the authenticator's answer, credential.toJSON(), goes
// back to the API when adding one (with the page's CSRF token), and in a form field when signing in,
// so that the session lands in the cookie as after the password form and no token reaches this script.
(function () {
  var PKC = window.PublicKeyCredential;
  if (!PKC || !PKC.parseRequestOptionsFromJSON || !PKC.parseCreationOptionsFromJSON) return;
  var csrf = document.querySelector('meta[name="csrf-token"]');
  var BROWSER_SAYS = {
    NotAllowedError: "Cancelled, or no passkey answered in time",
    AbortError: "Cancelled, or no passkey answered in time",
    InvalidStateError: "This device already has a passkey for your account",
  };

  function post(path, body) {
    var headers = { "Content-Type": "application/json" };
    if (csrf) headers["X-CSRF-Token"] = csrf.content;
    var init = { method: "POST", headers: headers, credentials: "same-origin" };
    if (body !== undefined) init.body = JSON.stringify(body);
    return fetch(path, init).then(function (response) {
      return response.json().then(function (json) {
        if (!json.success) throw new Error(json.error);
        return json;
      });
    });
  }

  function report(form) {
    return function (error) {
      var slot = form.querySelector(".form-error");
      slot.textContent = BROWSER_SAYS[error.name] || error.message || "The passkey could not be used";
    };
  }

  // Ask for the options at `path`, let the authenticator answer, and post its answer with the form.
  function signIn(form, path, body, extra) {
    return post(path, body)
      .then(function (json) {
        var request = Object.assign({ publicKey: PKC.parseRequestOptionsFromJSON(json.options) }, extra);
        return navigator.credentials.get(request);
      })
      .then(function (credential) {
        form.elements.namedItem("credential").value = JSON.stringify(credential.toJSON());
        form.submit();
      });
  }

  var login = document.querySelector('form[data-passkey="login"]');
  if (login) {
    var autofill = null; // the email field's offer of passkeys (conditional mediation), if any
    var clicked = false;
    login.hidden = false;
    login.querySelector("[data-passkey-start]").addEventListener("click", function () {
      clicked = true;
      if (autofill) autofill.abort();
      autofill = null;
      signIn(login, "/login/passkey/options").catch(report(login));
    });
    if (PKC.isConditionalMediationAvailable) {
      PKC.isConditionalMediationAvailable().then(function (available) {
        if (!available || clicked) return;
        autofill = new AbortController();
        var extra = { mediation: "conditional", signal: autofill.signal };
        signIn(login, "/login/passkey/options", undefined, extra).catch(function () {
          // Aborted by the button, or nothing chosen: the password form is still there.
        });
      });
    }
  }

  var second = document.querySelector('form[data-passkey="second-step"]');
  if (second) {
    second.hidden = false;
    second.querySelector("[data-passkey-start]").addEventListener("click", function () {
      var token = second.elements.namedItem("mfa_token").value;
      signIn(second, "/login/mfa/options", { mfaToken: token }).catch(report(second));
    });
  }

  var add = document.querySelector('form[data-passkey="add"]');
  if (add) {
    add.hidden = false;
    add.addEventListener("submit", function (event) {
      event.preventDefault();
      var name = add.elements.namedItem("name").value.trim();
      post("/passkeys/options", { password: add.elements.namedItem("password").value })
        .then(function (json) {
          return navigator.credentials.create({ publicKey: PKC.parseCreationOptionsFromJSON(json.options) });
        })
        .then(function (credential) {
          var body = { credential: credential.toJSON() };
          if (name) body.name = name;
          return post("/passkeys", body);
        })
        .then(function () {
          window.location.assign("/account?done=passkey_added");
        }, report(add));
    });
  }
})();
