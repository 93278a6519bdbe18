// Transcript page (/console/conversations/<id>): selecting words of a customer message fills the next
// empty entity row of that message's correction form with the words and their offset (in characters,
// as Python counts them), so a word that occurs twice is still told apart. Typing a span clears it.
(function () {
  "use strict";

  function codePoints(text) {
    return Array.from(text).length;
  }

  function fill(said) {
    var selection = window.getSelection();
    if (!selection || selection.isCollapsed || selection.rangeCount === 0) return;
    var range = selection.getRangeAt(0);
    if (!said.contains(range.startContainer) || !said.contains(range.endContainer)) return;
    var form = document.querySelector('form.correction[data-event="' + said.dataset.event + '"]');
    if (!form) return;
    var before = document.createRange();
    before.selectNodeContents(said);
    before.setEnd(range.startContainer, range.startOffset);
    var selected = range.toString();
    var span = selected.trim();
    if (!span) return;
    var lead = selected.length - selected.replace(/^\s+/, "").length;
    var start = codePoints(before.toString() + selected.slice(0, lead));
    var rows = Array.from(form.querySelectorAll(".entity-row"));
    var row = rows.find(function (r) { return !r.querySelector('input[name="span"]').value.trim(); }) ||
      rows[rows.length - 1];
    row.querySelector('input[name="span"]').value = span;
    row.querySelector('input[name="start"]').value = String(start);
    form.closest("details").open = true;
    row.querySelector('select[name="entity"]').focus();
  }

  document.querySelectorAll(".said[data-event]").forEach(function (said) {
    said.addEventListener("mouseup", function () { fill(said); });
    said.addEventListener("keyup", function () { fill(said); });
  });
  document.querySelectorAll('form.correction input[name="span"]').forEach(function (input) {
    input.addEventListener("input", function () {
      input.parentElement.querySelector('input[name="start"]').value = "";
    });
  });
}());
