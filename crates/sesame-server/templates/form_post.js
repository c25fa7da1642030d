(function () {
  var form = document.getElementById("form-post");
  if (form) HTMLFormElement.prototype.submit.call(form);
})();
