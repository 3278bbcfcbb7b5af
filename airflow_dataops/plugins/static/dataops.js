// Data Quality page: loading indicator, check picker, Acknowledge buttons. No dependencies.
(function () {
  "use strict";
  function showLoading() { var el = document.getElementById("loading"); if (el) { el.hidden = false; } }

  document.addEventListener("click", function (event) {
    var link = event.target.closest("a");
    if (link && link.target !== "_top" && link.href && !event.ctrlKey && !event.metaKey) { showLoading(); }
  });
  document.addEventListener("submit", showLoading);
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { showLoading(); select.form.submit(); });
  });

  function field(button, name) {
    var value = button.getAttribute("data-" + name);
    return value ? value : null;  // absent: no filter on that field
  }

  function acknowledge(button) {
    var status = document.querySelector(".ack-result");
    var label = button.textContent;
    button.disabled = true;
    button.textContent = "Acknowledging\u2026";
    fetch(button.getAttribute("data-ack-url"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({
        environment: field(button, "environment"), run_id: field(button, "run-id"),
        event: field(button, "event"), subject: field(button, "subject")
      })
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (!response.ok) {
          var detail = typeof body.detail === "string" ? body.detail : response.statusText;
          if (response.status === 403) { detail = "You need edit permission on this DAG to acknowledge (" + detail + ")"; }
          if (response.status === 401) { detail = "Your session has expired: sign in to Airflow again"; }
          throw new Error(detail);
        }
        if (status) { status.textContent = "Acknowledged " + body.acknowledged + " alert message(s) as " + body.by + "."; }
        showLoading();
        window.location.reload();
      });
    }).catch(function (error) {
      button.disabled = false;
      button.textContent = label;
      var target = status;
      if (!target) {
        target = document.createElement("span");
        target.setAttribute("role", "status");
        button.insertAdjacentElement("afterend", target);
      }
      target.textContent = "Could not acknowledge: " + error.message;
      target.classList.add("ack-error");
    });
  }
  document.querySelectorAll("button.ack").forEach(function (button) {
    button.addEventListener("click", function () { acknowledge(button); });
  });
})();
