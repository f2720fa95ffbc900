// Coalesces rendering: any number of updates between two frames cost one render per panel.
// While the tab is hidden the browser runs no frames, so nothing is rendered at all.
/* global requestAnimationFrame */

export function createFrameScheduler() {
  const pending = new Set();
  let requested = false;

  function flush() {
    requested = false;
    const tasks = [...pending];
    pending.clear();
    for (const task of tasks) {
      try {
        task();
      } catch (error) {
        // One panel failing on odd data must not blank the others.
        console.error('dashboard: rendering failed', error);
      }
    }
  }

  return function schedule(task) {
    pending.add(task);
    if (requested) return;
    requested = true;
    requestAnimationFrame(flush);
  };
}
