'use strict';
function sortBy(table, header) {
  const ascending = header.getAttribute('aria-sort') !== 'ascending';
  const numeric = header.dataset.type === 'number';
  const column = header.cellIndex;
  for (const th of table.tHead.rows[0].cells) th.removeAttribute('aria-sort');
  header.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
  const value = (row) => row.cells[column].dataset.sort || '';
  const rows = Array.from(table.tBodies[0].rows).sort((a, b) => {
    let x = value(a), y = value(b), order;
    if (x === '' || y === '') {
      order = x === y ? 0 : (x === '' ? 1 : -1); // no value: last either way
    } else {
      if (numeric) { x = parseFloat(x); y = parseFloat(y); }
      order = (x < y ? -1 : x > y ? 1 : 0) * (ascending ? 1 : -1);
    }
    return order || a.dataset.index - b.dataset.index;
  });
  table.tBodies[0].append(...rows);
}
for (const th of document.querySelectorAll('table.sortable thead th')) {
  th.addEventListener('click', () => sortBy(th.closest('table'), th));
  th.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      sortBy(th.closest('table'), th);
    }
  });
}