// The unmasking-order view (client/visualizer.ts opens it; client/visualizerModel.ts computes the replay it gets).
// It draws every mask position of every hole once per generation, then replays by toggling two classes per token
// ("shown" once its step is reached, "current" in the step just shown) from a requestAnimationFrame loop, so that a
// replay never rebuilds the DOM. Its position, speed and follow-live switch live in the webview state, so a hidden or
// restored panel resumes where it was.
(function () {
  'use strict';

  const vscode = acquireVsCodeApi();
  /** Steps per second at 1x speed. */
  const BASE_RATE = 3;
  const KIND_LABELS = {
    inline: 'Inline completion',
    fillRange: 'Fill Selection',
    fillHoles: 'Fill All Holes',
    candidates: 'Candidates',
  };

  const byId = (id) => document.getElementById(id);
  const ui = {
    app: byId('app'),
    meta: byId('meta'),
    play: byId('play'),
    back: byId('back'),
    forward: byId('forward'),
    scrub: byId('scrub'),
    position: byId('position'),
    speed: byId('speed'),
    live: byId('live'),
    status: byId('status'),
    canvas: byId('canvas'),
    legend: byId('legend'),
    arness: byId('arness'),
  };

  const saved = vscode.getState() || {};
  // The replay the extension wrote into the page (null: no generation yet). A state restored from getState wins: the
  // page is reloaded with its first HTML when a hidden panel is shown again, so the saved replay may be newer.
  const initialBlock = byId('unmask-visualizer-initial');
  const initial = initialBlock ? JSON.parse(initialBlock.textContent) : null;
  let replay = saved.replay || initial;
  let position = Number.isInteger(saved.position) ? saved.position : replay ? replay.steps : 0;
  let speed = typeof saved.speed === 'number' ? saved.speed : 1;
  let live = saved.live !== false;
  let playing = false;
  /** Per drawn token: its element and the step that committed it (-1 while masked). */
  let cells = [];
  let swatches = [];
  /** Tokens committed up to and including each step. */
  let cumulative = [];
  let frame = 0;
  let progress = 0;
  let lastTime = 0;
  let reportedRender = false;

  const save = () => vscode.setState({ replay, position, speed, live, playing });
  const hueOf = (step) => {
    const span = Math.max(1, (replay ? Math.max(replay.plannedSteps, replay.steps) : 1) - 1);
    return Math.round((step / span) * 280);
  };
  const percent = (x) => `${Math.round(x * 100)}%`;

  function element(tag, className, text) {
    const el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  /** Builds the DOM for the current replay: once per generation (or live step), never during a replay. */
  function render() {
    ui.app.dataset.state = replay ? 'replay' : 'empty';
    cells = [];
    swatches = [];
    cumulative = [];
    ui.canvas.replaceChildren();
    ui.legend.replaceChildren();
    ui.arness.replaceChildren();
    if (!replay) {
      ui.meta.textContent = '';
      ui.status.textContent = '';
      return;
    }
    const latency = replay.latencyMs === null ? '' : ` · ${replay.latencyMs} ms`;
    const file = replay.file ? ` · ${replay.file}` : '';
    ui.meta.textContent =
      `${KIND_LABELS[replay.kind] || replay.kind}${file} · ${replay.steps} of ${replay.plannedSteps} steps · ` +
      `${replay.committed} of ${replay.positions} tokens${latency}` +
      (replay.cutByDeadline ? ' · the latency budget cut the steps: the last one committed the rest' : '') +
      (replay.stopped ? ' · stopped early (cancelled)' : replay.partial ? ' · running…' : '');

    replay.holes.forEach((hole, h) => {
      const block = element('div', 'hole');
      block.append(element('div', 'hole-label', `Hole ${h + 1} · ${hole.length} masks`));
      const tokens = element('div', 'tokens');
      for (const cell of hole) {
        const el = element('span', 'tok', cell.text);
        el.classList.toggle('eos', cell.eos);
        el.classList.toggle('filled', cell.filled);
        el.classList.toggle('trimmed', cell.trimmed);
        el.classList.toggle('pending', cell.step < 0);
        if (cell.step >= 0) {
          el.style.setProperty('--hue', String(hueOf(cell.step)));
          el.style.setProperty('--conf', cell.confidence.toFixed(3));
          el.title =
            `Step ${cell.step + 1}, commit ${cell.order + 1}, confidence ${percent(cell.confidence)}` +
            (cell.eos ? ', end of span' : '') +
            (cell.filled ? (cell.eos ? ' (end-of-span fill)' : ' (token healing: the text before the cursor, not the model\'s choice)') : '') +
            (cell.trimmed ? ', cut from the text (after the end of span)' : '');
        } else {
          el.title = 'Still masked';
        }
        tokens.append(el);
        cells.push({ el, step: cell.step });
      }
      block.append(tokens);
      ui.canvas.append(block);
    });

    let total = 0;
    replay.committedAt.forEach((count, step) => {
      total += count;
      cumulative.push(total);
      const swatch = element('span', 'swatch', `${step + 1}`);
      swatch.style.setProperty('--hue', String(hueOf(step)));
      swatch.title = `Step ${step + 1}: ${count} token${count === 1 ? '' : 's'}`;
      ui.legend.append(swatch);
      swatches.push(swatch);
    });

    const head = element('tr');
    head.append(element('th', '', 'k'));
    for (const a of replay.arness) head.append(element('th', '', String(a.k)));
    ui.arness.append(head);
    for (const [label, key] of [['Local', 'local'], ['Global', 'global']]) {
      const row = element('tr', `arness-${key}`);
      row.append(element('th', '', label));
      for (const a of replay.arness) {
        const value = a[key];
        const td = element('td', value === null ? 'undefined' : '');
        if (value === null) {
          td.textContent = '–';
          td.title = `Undefined: too few tokens for k = ${a.k}`;
        } else {
          td.textContent = value.toFixed(2);
          td.style.setProperty('--v', String(value));
          td.title = `${label} AR-ness@${a.k} = ${value.toFixed(3)}`;
        }
        row.append(td);
      }
      ui.arness.append(row);
    }

    ui.scrub.max = String(replay.steps);
    reportRender();
  }

  function reportRender() {
    if (reportedRender) return;
    reportedRender = true;
    ui.app.dataset.rendered = 'true';
    vscode.postMessage({ type: 'rendered' });
  }

  /** Shows the state after `next` steps by toggling classes only. */
  function show(next) {
    const steps = replay ? replay.steps : 0;
    position = Math.max(0, Math.min(steps, next));
    for (const cell of cells) {
      cell.el.classList.toggle('shown', cell.step >= 0 && cell.step < position);
      cell.el.classList.toggle('current', cell.step === position - 1);
    }
    swatches.forEach((swatch, step) => swatch.classList.toggle('current', step === position - 1));
    ui.scrub.value = String(position);
    ui.scrub.setAttribute('aria-valuetext', `Step ${position} of ${steps}`);
    ui.position.textContent = `${position} / ${steps}`;
    if (replay) {
      const now = position > 0 ? cumulative[position - 1] - (cumulative[position - 2] || 0) : 0;
      const sofar = position > 0 ? cumulative[position - 1] : 0;
      ui.status.textContent =
        position === 0
          ? `Before step 1: all ${replay.positions} positions masked.`
          : `Step ${position} of ${steps}: ${now} token${now === 1 ? '' : 's'} committed, ${sofar} of ${replay.positions} in all.`;
    }
    ui.back.disabled = position === 0;
    ui.forward.disabled = position >= steps;
    save();
  }

  function tick(now) {
    progress += ((now - lastTime) / 1000) * BASE_RATE * speed;
    lastTime = now;
    const reached = Math.min(replay.steps, Math.floor(progress));
    if (reached !== position) show(reached);
    if (reached >= replay.steps) pause();
    else frame = requestAnimationFrame(tick);
  }

  function play() {
    if (!replay || replay.steps === 0) return;
    if (position >= replay.steps) show(0);
    playing = true;
    progress = position;
    lastTime = performance.now();
    frame = requestAnimationFrame(tick);
    updatePlayButton();
  }

  function pause() {
    cancelAnimationFrame(frame);
    playing = false;
    updatePlayButton();
  }

  function updatePlayButton() {
    ui.play.textContent = playing ? 'Pause' : 'Play';
    ui.play.setAttribute('aria-pressed', String(playing));
    ui.app.classList.toggle('playing', playing);
    save();
  }

  /** Shows a new generation (or a new step of a running one) at its last step. */
  function setReplay(next) {
    pause();
    replay = next;
    render();
    show(replay ? replay.steps : 0);
  }

  window.addEventListener('message', (event) => {
    const message = event.data;
    if (!message || message.type !== 'replay') return;
    if (message.initial) {
      // The answer to "ready": keep a restored replay (and its position) unless there is a different one and the
      // view follows new generations (with "Follow live" off, the one on screen is pinned).
      if (message.replay && (!replay || (live && message.replay.key !== replay.key))) setReplay(message.replay);
      else reportRender();
    } else if (live) {
      setReplay(message.replay);
    }
  });

  ui.play.addEventListener('click', () => (playing ? pause() : play()));
  ui.back.addEventListener('click', () => {
    pause();
    show(position - 1);
  });
  ui.forward.addEventListener('click', () => {
    pause();
    show(position + 1);
  });
  ui.scrub.addEventListener('input', () => {
    pause();
    show(Number(ui.scrub.value));
  });
  ui.speed.addEventListener('change', () => {
    speed = Number(ui.speed.value) || 1;
    save();
  });
  ui.live.addEventListener('change', () => {
    live = ui.live.checked;
    save();
  });

  // Space plays or pauses and the arrows step, wherever the focus is, except where the control has its own use of the
  // key (buttons and check boxes take Space, the slider and the speed list take the arrows).
  document.addEventListener('keydown', (event) => {
    if (!replay || event.altKey || event.ctrlKey || event.metaKey) return;
    const target = event.target;
    const tag = target && target.tagName;
    const ownsSpace = tag === 'BUTTON' || tag === 'SELECT' || (tag === 'INPUT' && target.type === 'checkbox');
    const ownsArrows = tag === 'SELECT' || (tag === 'INPUT' && target.type === 'range');
    const jump = (to) => {
      pause();
      show(to);
    };
    if ((event.key === ' ' || event.key === 'k') && !ownsSpace) {
      if (playing) pause();
      else play();
    } else if (ownsArrows) {
      return;
    } else if (event.key === 'ArrowLeft') {
      jump(position - 1);
    } else if (event.key === 'ArrowRight') {
      jump(position + 1);
    } else if (event.key === 'Home') {
      jump(0);
    } else if (event.key === 'End') {
      jump(replay.steps);
    } else {
      return;
    }
    event.preventDefault();
  });

  ui.speed.value = String(speed);
  ui.live.checked = live;
  const resume = saved.playing === true;
  render();
  show(position);
  reportRender();
  if (resume) play();
  else updatePlayButton();
  vscode.postMessage({ type: 'ready' });
})();
