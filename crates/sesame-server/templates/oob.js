(function () {
  var field = document.getElementById("code");
  var button = document.getElementById("copy");
  var status = document.getElementById("copy-status");
  if (!field || !button || !status) return;
  field.addEventListener("focus", function () { field.select(); });
  function done(ok) {
    status.textContent = ok ? "Copied." : "Could not copy: select the code and copy it yourself.";
  }
  button.hidden = false;
  button.addEventListener("click", function () {
    field.select();
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(function () { done(true); }, function () { done(false); });
    } else {
      var ok = false;
      try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
      done(ok);
    }
  });
})();
