// The candidates panel's page script (client/candidatesPanel.ts serves it; client/candidatesHtml.ts is the page).
// It renders the panel model from the page's JSON data block with textContent only (candidate code is never parsed
// as HTML) and tells the extension which candidate to insert ({type: 'accept', index}) or that the panel should
// close ({type: 'close'}). The extension tells it when the document changed ({type: 'stale', message}).
(function () {
  const vscode = acquireVsCodeApi();
  const model = JSON.parse(document.getElementById('unmask-candidates-model').textContent);
  const list = document.getElementById('candidates');
  let stale = false;

  document.getElementById('title').textContent = `${model.entries.length} candidate${model.entries.length === 1 ? '' : 's'} for ${model.fileName}:${model.line}:${model.column}`;
  document.getElementById('summary').textContent = model.summary;
  if (model.empty) {
    const empty = document.getElementById('empty');
    empty.textContent = `No candidates: ${model.empty}.`;
    empty.hidden = false;
  }

  function span(className, text) {
    const el = document.createElement('span');
    el.className = className;
    el.textContent = text;
    return el;
  }

  const items = model.entries.map((entry, index) => {
    const item = document.createElement('li');
    item.className = 'candidate';
    item.tabIndex = 0;
    item.setAttribute('role', 'option');
    item.dataset.index = String(index);
    item.setAttribute('aria-label', `Candidate ${entry.rank}: ${entry.syntax}, ${entry.likelihood}, ${entry.score}`);

    const head = document.createElement('div');
    head.className = 'head';
    head.append(
      span('rank', entry.rank <= 9 ? String(entry.rank) : '·'),
      span(`syntax ${entry.syntaxOk === true ? 'ok' : entry.syntaxOk === false ? 'bad' : 'unknown'}`, entry.syntax),
      span('likelihood', entry.likelihood),
      span('score', entry.score),
    );
    const accept = document.createElement('button');
    accept.type = 'button';
    accept.className = 'accept';
    accept.textContent = 'Insert';
    accept.tabIndex = -1;
    head.append(accept);

    const code = document.createElement('pre');
    code.className = 'code';
    const inserted = span('inserted', entry.inserted);
    if (entry.inserted.length === 0) inserted.classList.add('nothing');
    code.append(span('context', entry.before), inserted, span('context', entry.after));

    item.append(head, code);
    item.addEventListener('click', () => choose(index));
    list.append(item);
    return item;
  });

  function choose(index) {
    if (stale || index < 0 || index >= items.length) return;
    items[index].classList.add('chosen');
    vscode.postMessage({ type: 'accept', index });
  }

  function focusItem(index) {
    if (items.length === 0) return;
    items[(index + items.length) % items.length].focus();
  }

  document.addEventListener('keydown', (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const focused = items.indexOf(document.activeElement);
    if (event.key === 'Escape') {
      vscode.postMessage({ type: 'close' });
    } else if (/^[1-9]$/.test(event.key)) {
      choose(Number(event.key) - 1);
    } else if (event.key === 'Enter' && focused !== -1) {
      choose(focused);
    } else if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      focusItem((focused === -1 ? 0 : focused) + (focused === -1 ? 0 : event.key === 'ArrowDown' ? 1 : -1));
    } else {
      return;
    }
    event.preventDefault();
  });

  window.addEventListener('message', (event) => {
    const message = event.data;
    if (message && message.type === 'stale') {
      stale = true;
      const banner = document.getElementById('stale');
      banner.textContent = message.message;
      banner.hidden = false;
      document.body.classList.add('is-stale');
    }
  });

  focusItem(0);
})();
