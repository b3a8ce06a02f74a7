// "Print receipt" buttons (data-print): the page's print styles leave only the receipt.
document.querySelectorAll("[data-print]").forEach(function (button) {
  button.addEventListener("click", function () { window.print(); });
});
